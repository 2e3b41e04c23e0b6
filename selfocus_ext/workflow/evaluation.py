"""Scoring a model (FP or quantized) on an evaluation set: CULane F1 per scenario or TuSimple accuracy, and
the mean Lane Distortion Score against reference lanes."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import torch
from tqdm import tqdm

from ..data import synth
from ..metrics import culane
from ..metrics import tusimple as tus
from ..lanes import LaneSet, distortion_score, lanes_to_tusimple
from .data import EvalSet


@torch.no_grad()
def evaluate(model, evalset: EvalSet, batch_size: int = 64, progress: bool = True, desc: str = "evaluating",
             reference: Optional[torch.Tensor] = None, device: str = "cpu",
             on_outputs: Optional[Callable[[Dict[str, torch.Tensor], List[dict]], None]] = None) -> Dict[str, object]:
    """Decoded lanes of every test image and their scores. Returns a dict with ``xs`` ([N, L, R] tensor,
    kept for comparisons), ``image_counts`` ([N, 3] per-image counts, for paired comparisons), the metric's
    numbers, and ``lds`` against ``reference`` xs when given. ``on_outputs(outputs, labels)`` sees each
    batch's head outputs (on the CPU) and labels (e.g. to write the predictions as files)."""
    model.eval()
    ys = torch.from_numpy(evalset.model_input.frame.ys)
    saved = model.model_input
    model.model_input = evalset.model_input
    all_xs: List[torch.Tensor] = []
    labels: List[dict] = []
    try:
        for i in tqdm(range(0, evalset.count, batch_size), desc=desc, unit="batch", disable=not progress):
            inputs, lab = evalset.items(i, min(i + batch_size, evalset.count))
            out = {k: v.cpu() for k, v in model(inputs.to(device)).items()}
            lanes = model.decode(out)
            if on_outputs is not None:
                on_outputs(out, lab)
            all_xs.append(lanes.xs)
            labels.extend(lab)
    finally:
        model.model_input = saved
    width = max(x.shape[1] for x in all_xs)
    xs = torch.cat([torch.nn.functional.pad(x, (0, 0, 0, width - x.shape[1]), value=float("nan")) for x in all_xs])
    result = {"xs": xs}
    if evalset.metric == "tusimple":
        rows = evalset.model_input.frame.ys.tolist()
        per_image = []
        for pred_xs, lab in zip(xs.numpy(), labels):
            pl = lanes_to_tusimple(pred_xs, decimals=None)
            gl = lanes_to_tusimple(lab["xs"], decimals=None, keep_absent=True)
            per_image.append(tus.bench(pl, gl, rows, 0))
        image_counts = torch.tensor(per_image, dtype=torch.float64).reshape(-1, 3)
        acc, fp, fn = image_counts.sum(0).tolist()
        n = max(1, len(labels))
        r = tus.Result(acc / n, fp / n, fn / n)
        result.update(f1=100 * r.f1, accuracy=100 * r.accuracy, fp=r.fp, fn=r.fn, per_scenario={})
    else:
        preds = LaneSet(ys, xs, torch.where(torch.isnan(xs).all(-1), float("nan"), 1.0)).to_points()
        matches = culane.match_images(preds, [lab["lanes"] for lab in labels])
        image_counts = torch.tensor([m.counts(0.5) for m in matches], dtype=torch.float64).reshape(-1, 3)
        # the scenarios' counts summed from the images' (matching is per image, so this equals scoring each
        # scenario on its own)
        groups: Dict[str, culane.Counts] = {}
        for c, lab in zip(image_counts.long().tolist(), labels):
            name = lab["scenario"] or "all"
            groups[name] = groups.get(name, culane.Counts()) + culane.Counts(*c)
        names = [s for s in synth.SCENARIOS if s in groups] + sorted(s for s in groups if s not in synth.SCENARIOS)
        res = {s: groups[s] for s in names}
        total = sum(res.values(), culane.Counts())
        # [tp, fp, fn] per scenario and in "total" (plain lists: the result is written as JSON)
        result["counts"] = {**{s: [c.tp, c.fp, c.fn] for s, c in res.items()}, "total": [total.tp, total.fp, total.fn]}
        result.update(f1=100 * total.f1, precision=100 * total.precision, recall=100 * total.recall,
                      per_scenario={s: (100 * c.f1 if s != "cross" else None) for s, c in res.items()},
                      cross_fp=res["cross"].fp if "cross" in res else None)
    # per image: CULane (tp, fp, fn) or TuSimple (accuracy, fp, fn), for paired comparisons of two models
    result["image_counts"] = image_counts
    if reference is not None:
        result["lds"] = lane_distortion(reference, xs, ys)
    return result


def per_image_distortion(reference: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Lane Distortion Score of ``xs`` against ``reference`` (both [N, L, R]) per image."""
    width = max(reference.shape[1], xs.shape[1])

    def pad(t):
        return torch.nn.functional.pad(t, (0, 0, 0, width - t.shape[1]), value=float("nan"))

    return distortion_score(pad(reference), pad(xs), ys)


def lane_distortion(reference: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> float:
    """Mean Lane Distortion Score of ``xs`` against ``reference``."""
    return float(per_image_distortion(reference, xs, ys).double().mean())
