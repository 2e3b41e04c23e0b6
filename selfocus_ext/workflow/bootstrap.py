"""How large an F1 difference a test set can resolve: a paired bootstrap over its scenes.

Two models scored on the same test images differ by ``F1(b) - F1(a)``. Resampling the images with
replacement (the same draw for both models, since the images are shared) gives the spread that difference
would have on another test set of the same size; a difference whose interval contains 0 is one the test set
cannot tell from noise.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

METRICS = ("culane", "tusimple")


def f1_from_sums(sums: np.ndarray, metric: str) -> np.ndarray:
    """F1 (in %) from rows ``[..., 3]``: summed CULane (tp, fp, fn) counts, or TuSimple's mean (accuracy, FP,
    FN) rates (its F1 of the mean FP and FN rates)."""
    if metric == "culane":
        tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        return 100.0 * f1
    p, r = 1.0 - sums[..., 1], 1.0 - sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.where(p + r > 0, 2 * p * r / (p + r), 0.0)


def paired_difference(a, b, metric: str = "culane", resamples: int = 2000, level: float = 0.95,
                      seed: int = 0) -> Dict[str, float]:
    """``F1(b) - F1(a)`` on the full test set and its paired-bootstrap interval at ``level``. ``a``, ``b``:
    per-image rows ``[N, 3]``, CULane (tp, fp, fn) or TuSimple (accuracy, fp, fn), the same images in the
    same order. Returns ``diff``, ``low``, ``high``, ``half_width`` (the difference this test set can resolve:
    half the interval's width) and ``resolved`` (1.0 when the interval excludes 0, else 0.0)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3 or a.shape != b.shape:
        raise ValueError(f"paired_difference: expected two [N, 3] arrays of the same images, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("paired_difference: no test images")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"paired_difference: resamples must be >= 1 and level in (0, 1), got {resamples}, {level}")
    n = len(a)
    scale = 1.0 if metric == "culane" else 1.0 / n  # TuSimple: mean rates

    def f1(rows_sum):
        return f1_from_sums(rows_sum * scale, metric)

    diff = float(f1(b.sum(0)) - f1(a.sum(0)))
    rng = np.random.default_rng(seed)
    # multinomial weights: how often each image appears in a resample (one draw for both models)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    diffs = f1(w @ b) - f1(w @ a)
    lo, hi = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"diff": diff, "low": float(lo), "high": float(hi), "half_width": float(hi - lo) / 2,
            "resolved": float(lo > 0 or hi < 0), "level": level, "resamples": resamples, "images": n}


def describe(result: Dict[str, float]) -> str:
    """One line for a report: the difference, its interval and whether the test set resolves it."""
    verdict = "resolved" if result["resolved"] else "within the test set's noise"
    return (f"{result['diff']:+.2f} F1 ({100 * result['level']:.0f}% paired-bootstrap interval "
            f"{result['low']:+.2f} .. {result['high']:+.2f} over {result['images']} test images; {verdict})")
