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


# Student's t, two-sided 95 %: the 0.975 quantile for 1-30 degrees of freedom (more: Cornish-Fisher)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"t975: degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def image_noise_of_mean(pairs, metric: str = "culane", resamples: int = 2000, seed: int = 0) -> float:
    """Standard deviation, over resamples of the shared test images, of the mean over seeds of
    ``F1(b_s) - F1(a_s)``: ``pairs`` holds per seed the two methods' per-image rows on the same images."""
    if not pairs:
        raise ValueError("image_noise_of_mean: no seeds")
    rows = [(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)) for a, b in pairs]
    n = len(rows[0][0])
    if any(a.shape != (n, 3) or b.shape != (n, 3) for a, b in rows) or n == 0:
        raise ValueError("image_noise_of_mean: every seed needs two [N, 3] arrays of the same N > 0 images")
    scale = 1.0 if metric == "culane" else 1.0 / n
    w = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    diffs = np.mean([f1_from_sums(w @ b * scale, metric) - f1_from_sums(w @ a * scale, metric) for a, b in rows], 0)
    return float(diffs.std(ddof=1)) if resamples > 1 else 0.0


def paired_verdict(seed_diffs, image_sd: float, min_seeds: int = 2) -> Dict[str, object]:
    """The comparison rule of the results: ``seed_diffs`` holds per seed ``F1(b) - F1(a)`` of two methods
    run on that seed's calibration images and scored on one test set; ``image_sd`` the test set's standard
    deviation of their mean (``image_noise_of_mean``, or a measured typical value). The 95 % interval of the
    mean difference combines Student's t over the seeds (the paired t-test) with the test set's noise, which
    the seeds share and their spread cannot show: ``mean +- sqrt((t * sd / sqrt(S))^2 + (1.96 * image_sd)^2)``.
    "win" (b above a) or "loss" only where the interval excludes 0, else "undecided"; fewer than
    ``min_seeds`` seeds decide nothing."""
    d = [float(x) for x in seed_diffs]
    if image_sd < 0 or not np.isfinite(image_sd):
        raise ValueError(f"paired_verdict: image_sd must be a finite value >= 0, got {image_sd}")
    s = len(d)
    mean = float(np.mean(d)) if d else float("nan")
    out = {"diff": mean, "seeds": s, "seed_diffs": d, "low": float("nan"), "high": float("nan")}
    if s < max(2, min_seeds):
        return {**out, "verdict": "undecided"}
    half = float(np.hypot(t975(s - 1) * np.std(d, ddof=1) / np.sqrt(s), 1.959964 * image_sd))
    out.update(low=mean - half, high=mean + half)
    verdict = "win" if mean - half > 0 else "loss" if mean + half < 0 else "undecided"
    return {**out, "verdict": verdict}


def false_decision_rate(residuals, seeds: int, image_sd: float, trials: int = 20000, seed: int = 0) -> float:
    """How often ``paired_verdict`` decides when the two methods do not differ: each trial draws ``seeds``
    per-seed differences from ``residuals`` (measured per-seed differences minus their entry's mean, i.e. the
    seed-to-seed noise of real comparisons, resampled with replacement) plus one shared test-set error
    N(0, image_sd^2), and applies the rule."""
    r = np.asarray(residuals, dtype=np.float64)
    if r.ndim != 1 or len(r) < 2:
        raise ValueError("false_decision_rate: needs at least two residuals")
    rng = np.random.default_rng(seed)
    draws = rng.choice(r, size=(trials, seeds)) + rng.normal(0.0, image_sd, size=(trials, 1))
    decided = sum(paired_verdict(row, image_sd)["verdict"] != "undecided" for row in draws)
    return decided / trials


def seed_residuals(entries) -> np.ndarray:
    """Pooled seed-to-seed noise of measured comparisons: per entry (a list of per-seed differences, at
    least two) the differences minus their mean, scaled by sqrt(S / (S - 1)) so that their spread is the
    per-seed spread rather than the smaller spread around an estimated mean."""
    out = []
    for d in entries:
        d = np.asarray(d, dtype=np.float64)
        if len(d) >= 2:
            out.append((d - d.mean()) * np.sqrt(len(d) / (len(d) - 1)))
    if not out:
        raise ValueError("seed_residuals: no entry with two or more seeds")
    return np.concatenate(out)
