"""Plain numpy/scipy reference of the Lane Distortion Score (the readable specification of docs/lanes.md)."""
from __future__ import annotations

import numpy as np


def band_iou(a: np.ndarray, b: np.ndarray, width: float) -> float:
    """IoU of two lanes drawn as horizontal bands of ``width`` px on their rows."""
    ha, hb = ~np.isnan(a), ~np.isnan(b)
    na, nb = int(ha.sum()), int(hb.sum())
    if na == 0 or nb == 0:
        return 0.0
    both = ha & hb
    overlap = float(np.clip(width - np.abs(a[both] - b[both]), 0, None).sum())
    union = width * (na + nb) - overlap
    return overlap / union if union > 0 else 0.0


def bounding_length(lane: np.ndarray, ys: np.ndarray) -> float:
    has = ~np.isnan(lane)
    x, y = lane[has], ys[has]
    return max(1.0, float(np.hypot(x.max() - x.min(), y.max() - y.min())))


def distortion_score_image(ref: np.ndarray, pert: np.ndarray, ys: np.ndarray, width=30.0, penalty=1.0, min_iou=0.5) -> float:
    from scipy.optimize import linear_sum_assignment

    ref = [lane for lane in ref if not np.isnan(lane).all()]
    pert = [lane for lane in pert if not np.isnan(lane).all()]
    iou = np.zeros((len(ref), len(pert)))
    for i, a in enumerate(ref):
        for j, b in enumerate(pert):
            v = band_iou(a, b, width)
            iou[i, j] = v if v >= min_iou else 0.0
    matched_ref, matched_pert = set(), set()
    score = 0.0
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        for i, j in zip(rows, cols):
            if iou[i, j] <= 0:
                continue
            a, b = ref[i], pert[j]
            ha, hb = ~np.isnan(a), ~np.isnan(b)
            both = ha & hb
            dist = float(np.abs(a[both] - b[both]).sum())
            score += dist / bounding_length(a, ys) + penalty * int((ha ^ hb).sum())
            matched_ref.add(i)
            matched_pert.add(j)
    score += penalty * sum(int((~np.isnan(a)).sum()) for i, a in enumerate(ref) if i not in matched_ref)
    score += penalty * sum(int((~np.isnan(b)).sum()) for j, b in enumerate(pert) if j not in matched_pert)
    return score


def distortion_score(ref_xs, pert_xs, ys, width=30.0, penalty=1.0, min_iou=0.5) -> np.ndarray:
    """Scores of [B, L, R] (or [K, B, L, R]) perturbed lanes against [B, L, R] reference lanes."""
    ref_xs = np.asarray(ref_xs, dtype=np.float32)
    pert_xs = np.asarray(pert_xs, dtype=np.float32)
    ys = np.asarray(ys, dtype=np.float32)
    squeeze = pert_xs.ndim == 3
    if squeeze:
        pert_xs = pert_xs[None]
    out = np.zeros(pert_xs.shape[:2], dtype=np.float64)
    for k in range(pert_xs.shape[0]):
        for b in range(pert_xs.shape[1]):
            out[k, b] = distortion_score_image(ref_xs[b], pert_xs[k, b], ys, width, penalty, min_iou)
    return out[0] if squeeze else out
