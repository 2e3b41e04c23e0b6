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
import math
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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number_list(v) -> bool:
    return isinstance(v, list) and all(_is_number(x) for x in v)


def check_record(rec, kind: str, where: str) -> None:
    """A record's fields and shapes (``kind`` "prediction" or "ground truth"); ``where`` names file and line."""
    if not isinstance(rec, dict):
        raise TuSimpleFormatError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    keys = ("raw_file", "lanes", "run_time") if kind == "prediction" else ("raw_file", "lanes", "h_samples")
    for key in keys:
        if key not in rec:
            raise TuSimpleFormatError(f"{where}: the {kind} record lacks {key!r} ({', '.join(keys)} are required)")
    if not isinstance(rec["raw_file"], str):
        raise TuSimpleFormatError(f"{where}: raw_file must be a string (the image path), got "
                                  f"{type(rec['raw_file']).__name__}")
    if kind == "prediction" and not _is_number(rec["run_time"]):
        raise TuSimpleFormatError(f"{where}: run_time must be a finite number (ms), got {rec['run_time']!r}")
    if kind != "prediction" and not _number_list(rec["h_samples"]):
        raise TuSimpleFormatError(f"{where}: h_samples must be a list of finite numbers")
    if not isinstance(rec["lanes"], list) or not all(_number_list(lane) for lane in rec["lanes"]):
        raise TuSimpleFormatError(f"{where}: lanes must be a list of lanes, each a list of finite numbers (x, or -2 "
                                  "where the lane has no point)")


def read_json_lines(path: str, kind: str = "prediction") -> List[dict]:
    """The records of a TuSimple JSON-lines file, each checked (``kind``: "prediction" or "ground truth")."""
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
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise TuSimpleFormatError(f"{path}:{number}: not a JSON object: {exc}") from None
            check_record(rec, kind, f"{path}:{number}")
            rec["_where"] = f"{path}:{number}"
            records.append(rec)
    return records


def _where(rec, default: str) -> str:
    return rec.get("_where", default) if isinstance(rec, dict) else default


def evaluate_records(preds: Sequence[dict], gts: Sequence[dict]) -> Result:
    """lane.py's bench_one_submit on parsed records (``raw_file``, ``lanes``, ``run_time`` / ``h_samples``)."""
    if len(gts) != len(preds):
        raise TuSimpleFormatError(f"got {len(preds)} predictions for {len(gts)} test images; every image needs one")
    by_file: Dict[str, dict] = {}
    for i, g in enumerate(gts):
        where = _where(g, f"ground-truth record {i}")
        check_record(g, "ground truth", where)
        if any(len(lane) != len(g["h_samples"]) for lane in g["lanes"]):
            raise TuSimpleFormatError(f"{where}: a lane does not have one value per h_sample "
                                      f"({len(g['h_samples'])})")
        by_file[g["raw_file"]] = g
    acc = fp = fn = 0.0
    for i, p in enumerate(preds):
        where = _where(p, f"prediction {i}")
        check_record(p, "prediction", where)
        gt = by_file.get(p["raw_file"])
        if gt is None:
            raise TuSimpleFormatError(f"{where}: prediction for {p['raw_file']!r}, which is not a test image")
        try:
            a, f_p, f_n = bench(p["lanes"], gt["lanes"], gt["h_samples"], p["run_time"])
        except TuSimpleFormatError as exc:
            raise TuSimpleFormatError(f"{where}: {exc} ({len(gt['h_samples'])}) of {p['raw_file']}") from None
        acc += a
        fp += f_p
        fn += f_n
    n = len(by_file)
    return Result(acc / n, fp / n, fn / n) if n else Result(0.0, 0.0, 0.0)


def evaluate_files(pred_file: str, gt_file: str) -> Result:
    gts = read_json_lines(gt_file, "ground truth")
    if not gts:
        raise TuSimpleFormatError(f"{gt_file}: no ground-truth records (expected one JSON object per line)")
    return evaluate_records(read_json_lines(pred_file, "prediction"), gts)
