"""Figures of a tuning run: line charts of the noise-score curves and the selection history (matplotlib, the
optional ``plots`` extra), and lanes drawn over test images (OpenCV)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]  # RGB
Series = Tuple[Sequence[float], Sequence[float]]
PLOTS_HINT = "pip install matplotlib (or the package's [plots] extra)"


def charts_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"line charts need matplotlib: {PLOTS_HINT}") from exc
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _panel(ax, series: Dict[str, Series], title: str, xlabel: str, ylabel: str, logx: bool = False,
           highlight: Optional[Dict[str, Sequence[bool]]] = None) -> None:
    """One axis of line charts; ``highlight[name][i]`` draws point i of a series as a filled marker."""
    for k, (name, (xs, ys)) in enumerate(series.items()):
        color = tuple(c / 255 for c in COLORS[k % len(COLORS)])
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        ok = np.isfinite(ys) & ((xs > 0) | (not logx))
        ax.plot(xs[ok], ys[ok], color=color, marker="o", markersize=3, markerfacecolor="none", label=name)
        marks = (highlight or {}).get(name)
        if marks is not None:
            sel = ok & np.array([bool(m) for m in marks] + [False] * (len(xs) - len(marks)))[: len(xs)]
            ax.plot(xs[sel], ys[sel], linestyle="none", marker="o", markersize=6, color=color)
    if logx:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def save_curves_figure(path: str, curves) -> None:
    """Noise-score curves on one axis: noise RMS relative to each head's output RMS."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    series = {name: ([l / c.output_rms for l in c.levels], c.scores) for name, c in curves.items()}
    _panel(ax, series, "noise-score curves (Lane Distortion Score)", "noise RMS / head output RMS", "LDS", logx=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_selection_figure(path: str, history: List[dict]) -> None:
    """Over the iterations: each head's error relative to its first measurement (filled marker: selected at
    that refresh), and the Lane Distortion Score its curve predicts when curves were used."""
    plt = _pyplot()
    heads = list(history[0]["levels"]) if history else []
    its = [float(h["iteration"]) for h in history]
    rel = {n: (its, [h["levels"][n] / max(history[0]["levels"][n], 1e-12) for h in history]) for n in heads}
    marks = {n: [n in h["selected"] and not h.get("final") for h in history] for n in heads}
    predicted = bool(history and history[0].get("predicted"))
    fig, axes = plt.subplots(2 if predicted else 1, 1, figsize=(6.4, 8.0 if predicted else 4.0), squeeze=False)
    _panel(axes[0][0], rel, "error level per head (filled: selected)", "iteration", "RMS / initial", highlight=marks)
    if predicted:
        pred = {n: (its, [h["predicted"].get(n, float("nan")) for h in history]) for n in heads}
        _panel(axes[1][0], pred, "predicted Lane Distortion Score", "iteration", "LDS", highlight=marks)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def lanes_figure(image: np.ndarray, model_input, layers: Dict[str, np.ndarray], scale: int = 2) -> np.ndarray:
    """``image`` (uint8 RGB, model input size) upscaled, with lane sets ([L, R] frame x on the frame rows)
    drawn in order: each entry of ``layers`` gets its colour and a legend."""
    img = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    ys = model_input.frame.ys
    palette = {"ground truth": (60, 220, 60), "FP": (40, 140, 255), "quantized": (255, 60, 60)}
    for k, (name, xs) in enumerate(layers.items()):
        color = palette.get(name, COLORS[k % len(COLORS)])
        for lane in np.asarray(xs):
            ok = ~np.isnan(lane)
            if ok.sum() < 2:
                continue
            u, v = model_input.to_input(lane[ok], ys[ok])
            pts = np.stack([u, v], 1) * scale
            cv2.polylines(img, [np.round(pts).astype(np.int32)], False, color, 2 if name != "ground truth" else 4,
                          cv2.LINE_AA)
        cv2.putText(img, name, (8, 20 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 2, cv2.LINE_AA)
    return img


def save_png(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {path}")
