"""A straightforward Python CULane metric (OpenCV drawing, the official matcher ported line by line, scipy's
assignment for the exact one), following the official tool's steps; the reference the C++ path is tested
and benchmarked against. Needs opencv-python and scipy."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

INT_MIN = -(2**31)


def spline_points(lane: np.ndarray, times: int = 50) -> np.ndarray:
    """The official tool's natural cubic spline through the lane's points, parameterised by chord length:
    ``times`` samples per segment plus the last point (float32, like its Point2f). Coordinate differences
    are taken in float32 as there; repeated points give NaN samples as there."""
    p = np.asarray(lane, dtype=np.float32).reshape(-1, 2)
    n = len(p)
    if n < 3:
        return p if n == 2 else np.zeros((0, 2), np.float32)
    with np.errstate(all="ignore"):
        d = (p[1:] - p[:-1]).astype(np.float64)  # float32 subtraction, then double
        h = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)
        a, b, c = h[:-1].copy(), 2 * (h[:-1] + h[1:]), h[1:].copy()
        rhs = 6 * (d[1:] / h[1:, None] - d[:-1] / h[:-1, None])
        c[0] = c[0] / b[0]
        rhs[0] = rhs[0] / b[0]
        for i in range(1, n - 2):
            den = b[i] - a[i] * c[i - 1]
            c[i] = c[i] / den
            rhs[i] = (rhs[i] - a[i] * rhs[i - 1]) / den
        m = np.zeros((n, 2))
        m[n - 2] = rhs[n - 3]
        for i in range(n - 4, -1, -1):
            m[i + 1] = rhs[i] - c[i] * m[i + 2]
        m[0] = m[n - 1] = 0
        out = []
        for i in range(n - 1):
            bcoef = d[i] / h[i] - (2 * h[i] * m[i] + h[i] * m[i + 1]) / 6
            ccoef = m[i] / 2
            dcoef = (m[i + 1] - m[i]) / (6 * h[i])
            t = (h[i] / times) * np.arange(times)[:, None]
            out.append(p[i].astype(np.float64) + bcoef * t + ccoef * t**2 + dcoef * t**3)
        out.append(p[-1:].astype(np.float64))
        return np.concatenate(out).astype(np.float32)


def to_pixels(pts: np.ndarray) -> np.ndarray:
    """cvRound of float32 coordinates on x86-64: nearest, ties to even; NaN and out-of-range -> INT_MIN."""
    pts = np.asarray(pts, dtype=np.float32)
    ok = (pts >= -(2.0**31)) & (pts < 2.0**31)
    return np.where(ok, np.rint(np.where(ok, pts, 0)), INT_MIN).astype(np.int64)


def draw(lane: np.ndarray, width: int, height: int, lane_width: int) -> np.ndarray:
    import cv2

    im = np.zeros((height, width), np.uint8)
    ip = to_pixels(spline_points(lane))
    for a, b in zip(ip[:-1], ip[1:]):
        cv2.line(im, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, lane_width)
    return im


def iou_matrix(gt: Sequence[np.ndarray], pred: Sequence[np.ndarray], width=1640, height=590, lane_width=30) -> np.ndarray:
    """Official similarities: 0 when a lane has fewer than 2 points, NaN when neither lane draws a pixel."""
    gm = [draw(l, width, height, lane_width) if len(l) >= 2 else None for l in gt]
    pm = [draw(l, width, height, lane_width) if len(l) >= 2 else None for l in pred]
    out = np.zeros((len(gt), len(pred)))
    for i, a in enumerate(gm):
        for j, b in enumerate(pm):
            if a is None or b is None:
                continue
            inter = float((a & b).sum())
            union = float(a.sum()) + float(b.sum()) - inter
            out[i, j] = inter / union if union > 0 else float("nan")
    return out


def official_match(sim: np.ndarray) -> np.ndarray:
    """The official tool's matching (hungarianGraph.hpp with its transposition): GT index -> pred or -1."""
    rows, cols = sim.shape
    exchange = rows > cols
    mat = sim.T if exchange else sim
    left, right = mat.shape
    lw = [-1e5] * left
    for u in range(left):
        for v in range(right):
            if lw[u] < mat[u, v]:
                lw[u] = mat[u, v]
    rw = [0.0] * right
    left_match, right_match = [-1] * left, [-1] * right

    def dfs(u, left_used, right_used):
        left_used[u] = True
        for v in range(right):
            if not right_used[v] and abs(lw[u] + rw[v] - mat[u, v]) < 1e-2:
                right_used[v] = True
                if right_match[v] == -1 or dfs(right_match[v], left_used, right_used):
                    right_match[v] = u
                    left_match[u] = v
                    return True
        return False

    for u in range(left):
        while True:
            left_used, right_used = [False] * left, [False] * right
            if dfs(u, left_used, right_used):
                break
            d = 1e10
            for i in range(left):
                if left_used[i]:
                    for j in range(right):
                        slack = lw[i] + rw[j] - mat[i, j]
                        if not right_used[j] and slack < d:
                            d = slack
            if d == 1e10:
                return np.array(right_match if exchange else left_match)
            for i in range(left):
                if left_used[i]:
                    lw[i] -= d
            for j in range(right):
                if right_used[j]:
                    rw[j] += d
    return np.array(right_match if exchange else left_match)


def image_counts(gt, pred, threshold=0.5, matcher="official", **kw) -> Tuple[int, int, int]:
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(gt, pred, **kw)
    tp = 0
    if iou.size:
        if matcher == "official":
            match = official_match(iou)
            tp = int(sum(1 for g, p in enumerate(match) if p >= 0 and iou[g, p] > threshold))
        else:
            rows, cols = linear_sum_assignment(np.nan_to_num(iou, nan=0.0), maximize=True)
            tp = int(sum(1 for r, c in zip(rows, cols) if iou[r, c] > threshold))
    return tp, len(pred) - tp, len(gt) - tp


def evaluate(preds, gts, threshold=0.5, matcher="official", **kw) -> List[Tuple[int, int, int]]:
    return [image_counts(g, p, threshold, matcher, **kw) for p, g in zip(preds, gts)]
