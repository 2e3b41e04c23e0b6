"""What the published anchor-based post-processings share (CLRNet, LaneATT): which prior rows of a lane are
kept, and the cubic spline that CLRNet and the official LaneATT write (csrc/core/decoders/published/anchor.h
computes the same)."""
from __future__ import annotations

import numpy as np


def kept_rows(xs: np.ndarray, start: int, end: int) -> np.ndarray:
    """LaneATT's and CLRNet's rows of one lane (``xs`` normalised, bottom row first; changed in place): rows
    after ``end`` are dropped, and rows below ``start`` are kept only while the lane stays inside the image
    going down from it. Returns the mask of kept rows."""
    inside = ((xs[:start] >= 0.0) & (xs[:start] <= 1.0))[::-1].cumprod()[::-1].astype(bool)
    xs[end + 1:] = -2  # python slicing, negative ends included, as published
    head = xs[:start]
    head[~inside] = -2
    return xs >= 0


def spline_points(xs: np.ndarray, ys: np.ndarray, sample_ys: np.ndarray, width: float, height: float) -> np.ndarray:
    """CLRNet's and the official LaneATT's written lane: a cubic interpolating spline x(y) through the lane's
    normalised points (``ys`` increasing; degree min(3, n - 1)), read at ``sample_ys`` (normalised) within
    the points' y range widened by 0.01, kept where 0 <= x < 1, scaled to pixels and listed from the
    bottom up. (N, 2) float64."""
    from scipy.interpolate import InterpolatedUnivariateSpline

    spline = InterpolatedUnivariateSpline(ys, xs, k=min(3, len(xs) - 1))
    out = spline(sample_ys)
    out[(sample_ys < ys.min() - 0.01) | (sample_ys > ys.max() + 0.01)] = -2.0
    keep = (out >= 0) & (out < 1)
    return np.stack([(out * width)[keep][::-1], (sample_ys[keep] * height)[::-1]], 1)
