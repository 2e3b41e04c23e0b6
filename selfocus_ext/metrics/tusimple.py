"""The TuSimple metric: accuracy, FP, FN (and F1) exactly as the benchmark's ``lane.py`` computes them.

Per image: each GT lane gets a threshold of 20 px / cos(angle), the angle from a least-squares fit of x on y
over its points; a predicted lane's accuracy on that GT lane is the fraction of h_samples where both are
within the threshold (rows where both lack a point count as agreeing, as in lane.py); the GT lane's
accuracy is its best prediction's; it is matched when that reaches 85%. FP = unmatched predictions /
predictions, FN = misses / max(min(#gt, 4), 1); with more than 4 GT lanes one miss and the worst lane's
accuracy are forgiven. An image scores (0, 0, 1) when its run time exceeds 200 ms or it has more than
#gt + 2 predictions. Results are means over the GT images. F1 (not in lane.py) is computed from the means:
2 (1 - FP)(1 - FN) / ((1 - FP) + (1 - FN)).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

PIXEL_THRESH = 20.0
POINT_THRESH = 0.85


class TuSimpleFormatError(ValueError):
    """A prediction or GT file that does not follow the TuSimple JSON-lines format."""


def lane_angle(xs: np.ndarray, ys: np.ndarray) -> float:
    """arctan of the least-squares slope dx/dy over the lane's points (0 for fewer than two)."""
    keep = xs >= 0
    x, y = xs[keep], ys[keep]
    if len(x) <= 1:
        return 0.0
    yc = y - y.mean()
    denom = float((yc * yc).sum())
    k = float((yc * (x - x.mean())).sum()) / denom if denom > 0 else 0.0
    return float(np.arctan(k))


def line_accuracy(pred: np.ndarray, gt: np.ndarray, thresh: float) -> float:
    pred = np.where(pred >= 0, pred, -100.0)
    gt = np.where(gt >= 0, gt, -100.0)
    return float(np.sum(np.abs(pred - gt) < thresh)) / len(gt)


def bench(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], y_samples: Sequence[float], run_time: float) -> Tuple[float, float, float]:
    """(accuracy, FP, FN) of one image, as lane.py's LaneEval.bench."""
    ys = np.asarray(y_samples, dtype=np.float64)
    if any(len(p) != len(ys) for p in pred):
        raise TuSimpleFormatError("a predicted lane does not have one value per h_sample")
    if run_time > 200 or len(gt) + 2 < len(pred):
        return 0.0, 0.0, 1.0
    gts = [np.asarray(g, dtype=np.float64) for g in gt]
    preds = [np.asarray(p, dtype=np.float64) for p in pred]
    threshs = [PIXEL_THRESH / np.cos(lane_angle(g, ys)) for g in gts]
    line_accs: List[float] = []
    fn, matched = 0.0, 0.0
    for g, thresh in zip(gts, threshs):
        accs = [line_accuracy(p, g, thresh) for p in preds]
        max_acc = max(accs) if accs else 0.0
        if max_acc < POINT_THRESH:
            fn += 1
        else:
            matched += 1
        line_accs.append(max_acc)
    fp = len(preds) - matched
    if len(gts) > 4 and fn > 0:
        fn -= 1
    s = sum(line_accs)
    if len(gts) > 4:
        s -= min(line_accs)
    return (
        s / max(min(4.0, len(gts)), 1.0),
        fp / len(preds) if len(preds) > 0 else 0.0,
        fn / max(min(len(gts), 4.0), 1.0),
    )


@dataclass
class Result:
    accuracy: float
    fp: float
    fn: float

    @property
    def f1(self) -> float:
        p, r = 1.0 - self.fp, 1.0 - self.fn
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def read_json_lines(path: str) -> List[dict]:
    records = []
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            lines = f.readlines()
        except UnicodeDecodeError as exc:
            raise TuSimpleFormatError(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TuSimpleFormatError(f"{path}:{number}: not a JSON object: {exc}") from None
    return records


def evaluate_records(preds: Sequence[dict], gts: Sequence[dict]) -> Result:
    """lane.py's bench_one_submit on parsed records (``raw_file``, ``lanes``, ``run_time`` / ``h_samples``)."""
    if len(gts) != len(preds):
        raise TuSimpleFormatError(f"got {len(preds)} predictions for {len(gts)} test images; every image needs one")
    by_file: Dict[str, dict] = {}
    for g in gts:
        for key in ("raw_file", "lanes", "h_samples"):
            if key not in g:
                raise TuSimpleFormatError(f"a GT record lacks {key!r}")
        by_file[g["raw_file"]] = g
    acc = fp = fn = 0.0
    for p in preds:
        for key in ("raw_file", "lanes", "run_time"):
            if key not in p:
                raise TuSimpleFormatError(f"a prediction lacks {key!r} (raw_file, lanes and run_time are required)")
        gt = by_file.get(p["raw_file"])
        if gt is None:
            raise TuSimpleFormatError(f"prediction for {p['raw_file']!r}, which is not a test image")
        a, f_p, f_n = bench(p["lanes"], gt["lanes"], gt["h_samples"], p["run_time"])
        acc += a
        fp += f_p
        fn += f_n
    n = len(by_file)
    return Result(acc / n, fp / n, fn / n) if n else Result(0.0, 0.0, 0.0)


def evaluate_files(pred_file: str, gt_file: str) -> Result:
    gts = read_json_lines(gt_file)
    if not gts:
        raise TuSimpleFormatError(f"{gt_file}: no ground-truth records (expected one JSON object per line)")
    return evaluate_records(read_json_lines(pred_file), gts)
