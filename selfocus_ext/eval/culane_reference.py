"""A straightforward Python CULane metric (OpenCV drawing + scipy's Hungarian), following the official
tool's steps; the reference the C++ path is tested and benchmarked against. Needs opencv-python and scipy."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np


def spline_points(lane: np.ndarray, times: int = 50) -> np.ndarray:
    """Natural cubic spline through the lane's points, parameterised by chord length; ``times`` samples per
    segment plus the last point (float32, like the official tool's Point2f)."""
    p = np.asarray(lane, dtype=np.float32).reshape(-1, 2)
    keep = np.ones(len(p), bool)
    keep[1:] = np.any(p[1:] != p[:-1], axis=1)
    p = p[keep]
    if len(p) < 3:
        return p if len(p) == 2 else np.zeros((0, 2), np.float32)
    pd = p.astype(np.float64)
    h = np.sqrt(((pd[1:] - pd[:-1]) ** 2).sum(1))
    n = len(pd)
    # tridiagonal system for the interior second derivatives (natural end conditions)
    a, b, c = h[:-1], 2 * (h[:-1] + h[1:]), h[1:]
    rhs = 6 * ((pd[2:] - pd[1:-1]) / h[1:, None] - (pd[1:-1] - pd[:-2]) / h[:-1, None])
    cp = np.zeros(n - 2)
    dp = np.zeros((n - 2, 2))
    cp[0], dp[0] = c[0] / b[0], rhs[0] / b[0]
    for i in range(1, n - 2):
        den = b[i] - a[i] * cp[i - 1]
        cp[i] = c[i] / den
        dp[i] = (rhs[i] - a[i] * dp[i - 1]) / den
    m = np.zeros((n, 2))
    m[n - 2] = dp[n - 3]
    for i in range(n - 4, -1, -1):
        m[i + 1] = dp[i] - cp[i] * m[i + 2]
    out = []
    for i in range(n - 1):
        bcoef = (pd[i + 1] - pd[i]) / h[i] - (2 * h[i] * m[i] + h[i] * m[i + 1]) / 6
        ccoef = m[i] / 2
        dcoef = (m[i + 1] - m[i]) / (6 * h[i])
        t = (h[i] / times) * np.arange(times)[:, None]
        out.append(pd[i] + bcoef * t + ccoef * t**2 + dcoef * t**3)
    out.append(pd[-1:])
    return np.concatenate(out).astype(np.float32)


def draw(lane: np.ndarray, width: int, height: int, lane_width: int) -> np.ndarray:
    import cv2

    im = np.zeros((height, width), np.uint8)
    pts = spline_points(lane)
    ip = np.rint(pts).astype(np.int64)
    for a, b in zip(ip[:-1], ip[1:]):
        cv2.line(im, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, lane_width)
    return im


def iou_matrix(gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], width=1640, height=590, lane_width=30) -> np.ndarray:
    gm = [draw(l, width, height, lane_width) if len(l) >= 2 else None for l in gt]
    pm = [draw(l, width, height, lane_width) if len(l) >= 2 else None for l in pred]
    out = np.zeros((len(gt), len(pred)))
    for i, a in enumerate(gm):
        for j, b in enumerate(pm):
            if a is None or b is None:
                continue
            inter = float((a & b).sum())
            union = float(a.sum()) + float(b.sum()) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def image_counts(gt, pred, threshold=0.5, **kw) -> Tuple[int, int, int]:
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(gt, pred, **kw)
    tp = 0
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        tp = int(sum(1 for r, c in zip(rows, cols) if iou[r, c] > threshold))
    return tp, len(pred) - tp, len(gt) - tp


def evaluate(preds, gts, threshold=0.5, **kw) -> List[Tuple[int, int, int]]:
    return [image_counts(g, p, threshold, **kw) for p, g in zip(preds, gts)]
