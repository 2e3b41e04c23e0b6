"""The CULane metric: per-image TP/FP/FN and precision, recall and F1, as the official evaluation tool.

Each lane (a list of (x, y) points in the 1640x590 frame) is drawn 30 px thick through a natural cubic
spline of its points; two lanes' similarity is the IoU of their pixels; GT and predicted lanes are matched
one to one; a match with IoU above the threshold is a true positive. Totals are summed over images (and
scenarios) before precision, recall and F1. The rasterisation, IoUs and matching run in C++
(csrc/core/culane_*), in parallel over images, and by default reproduce the official tool count for count,
its matcher included (``matcher="official"``); ``matcher="exact"`` uses the maximum-total-IoU matching
instead (docs/lanes.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from ..ops.lanes import culane_match

Lanes = Sequence[np.ndarray]  # the lanes of one image, each (N, 2) float (x, y)

MF1_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))
MATCHERS = ("official", "exact")
# Lanes one image may have, per matcher (the C++ core's kMaxLanesOfficial and kMaxLanesExact).
MAX_LANES = {"official": 1024, "exact": 64}


def pack_lanes(images: Sequence[Lanes]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lanes of many images as CSR tensors: points [P, 2] float32, lane offsets [L + 1], image offsets [N + 1].

    NaN is rejected. Like the official tool (whose points are float32), a value beyond float32's range
    becomes infinite, and infinite coordinates are drawn as the official tool draws them."""
    points, lane_starts, image_starts = [], [0], [0]
    for i, lanes in enumerate(images):
        for j, lane in enumerate(lanes):
            pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
            if np.isnan(pts).any():
                raise ValueError(f"image {i}, lane {j}: coordinates must not be NaN")
            with np.errstate(over="ignore"):
                pts = pts.astype(np.float32)
            points.append(pts)
            lane_starts.append(lane_starts[-1] + len(pts))
        image_starts.append(len(lane_starts) - 1)
    pts = np.concatenate(points) if points else np.zeros((0, 2), np.float32)
    return (
        torch.from_numpy(np.ascontiguousarray(pts)),
        torch.tensor(lane_starts, dtype=torch.int64),
        torch.tensor(image_starts, dtype=torch.int64),
    )


@dataclass
class ImageMatch:
    """One image: IoU of every (GT, predicted) lane pair and the predicted lane matched to each GT lane."""

    iou: np.ndarray  # [n_gt, n_pred] float64; NaN where neither lane draws a pixel (0/0)
    gt_match: np.ndarray  # [n_gt], -1 for none

    def tp(self, threshold: float = 0.5) -> int:
        return int(sum(1 for g, p in enumerate(self.gt_match) if p >= 0 and self.iou[g, p] > threshold))

    def counts(self, threshold: float = 0.5) -> Tuple[int, int, int]:
        tp = self.tp(threshold)
        n_gt, n_pred = self.iou.shape
        return tp, n_pred - tp, n_gt - tp


def check_matcher(matcher: str) -> str:
    if matcher not in MATCHERS:
        raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, got {matcher!r}")
    return matcher


def match_images(
    preds: Sequence[Lanes],
    gts: Sequence[Lanes],
    width: int = 1640,
    height: int = 590,
    lane_width: int = 30,
    matcher: str = "official",
) -> List[ImageMatch]:
    """Lane IoUs and the matching of every image (predictions vs ground truth): the official tool's
    matcher by default, or ``"exact"`` (maximum total IoU)."""
    if len(preds) != len(gts):
        raise ValueError(f"got predictions for {len(preds)} images but ground truth for {len(gts)}")
    check_matcher(matcher)
    pp, pl, pi = pack_lanes(preds)
    gp, gl, gi = pack_lanes(gts)
    match, iou = culane_match(pp, pl, pi, gp, gl, gi, width, height, lane_width, matcher)
    match, iou = match.numpy(), iou.numpy()
    out, m0, i0 = [], 0, 0
    for pred, gt in zip(preds, gts):
        g, p = len(gt), len(pred)
        out.append(ImageMatch(iou[i0 : i0 + g * p].reshape(g, p), match[m0 : m0 + g]))
        m0 += g
        i0 += g * p
    return out


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def counts(matches: Iterable[ImageMatch], threshold: float = 0.5) -> Counts:
    total = Counts()
    for m in matches:
        total = total + Counts(*m.counts(threshold))
    return total


def evaluate(
    preds: Sequence[Lanes],
    gts: Sequence[Lanes],
    thresholds: Sequence[float] = (0.5,),
    width: int = 1640,
    height: int = 590,
    lane_width: int = 30,
    matcher: str = "official",
) -> Dict[float, Counts]:
    """Summed TP/FP/FN over the images at each IoU threshold (the matching does not depend on it)."""
    matches = match_images(preds, gts, width, height, lane_width, matcher)
    return {float(t): counts(matches, t) for t in thresholds}


def mean_f1(by_threshold: Mapping[float, Counts]) -> float:
    """mF1: the mean F1 over the thresholds given (CULane's 0.50:0.05:0.95 by convention)."""
    return float(np.mean([c.f1 for c in by_threshold.values()]))


def evaluate_scenarios(
    scenarios: Mapping[str, Tuple[Sequence[Lanes], Sequence[Lanes]]],
    thresholds: Sequence[float] = (0.5,),
    width: int = 1640,
    height: int = 590,
    lane_width: int = 30,
    matcher: str = "official",
) -> Dict[str, Dict[float, Counts]]:
    """Counts per scenario plus ``"total"``: the scenarios' TP/FP/FN summed before precision, recall, F1."""
    result: Dict[str, Dict[float, Counts]] = {}
    for name, (preds, gts) in scenarios.items():
        result[name] = evaluate(preds, gts, thresholds, width, height, lane_width, matcher)
    result["total"] = {
        float(t): sum((result[name][float(t)] for name in scenarios), Counts()) for t in thresholds
    }
    return result


def evaluate_grouped(
    preds: Sequence[Lanes],
    gts: Sequence[Lanes],
    labels: Sequence[str],
    thresholds: Sequence[float] = (0.5,),
    order: Sequence[str] = (),
    matcher: str = "official",
) -> Dict[str, Dict[float, Counts]]:
    """``evaluate_scenarios`` on images grouped by their scenario label: the labels in ``order`` first,
    then the others sorted."""
    groups: Dict[str, Tuple[list, list]] = {}
    for p, g, label in zip(preds, gts, labels):
        group = groups.setdefault(label, ([], []))
        group[0].append(p)
        group[1].append(g)
    names = [s for s in order if s in groups] + sorted(s for s in groups if s not in order)
    return evaluate_scenarios({s: groups[s] for s in names}, thresholds, matcher=matcher)


def format_table(result: Mapping[str, Mapping[float, Counts]], threshold: float = 0.5) -> str:
    """The per-scenario summary: TP, FP, FN, precision, recall and F1; "cross" has no lanes, so only its FP
    is meaningful (as in the official summary)."""
    lines = [f"{'scenario':<10} {'tp':>7} {'fp':>7} {'fn':>7} {'precision':>9} {'recall':>7} {'F1':>7}"]
    for name, by_t in result.items():
        c = by_t[float(threshold)]
        if name == "cross":
            lines.append(f"{name:<10} {'-':>7} {c.fp:>7} {'-':>7} {'-':>9} {'-':>7} {'FP ' + str(c.fp):>7}")
        else:
            lines.append(
                f"{name:<10} {c.tp:>7} {c.fp:>7} {c.fn:>7} {c.precision:>9.4f} {c.recall:>7.4f} {c.f1 * 100:>7.2f}"
            )
    return "\n".join(lines)
