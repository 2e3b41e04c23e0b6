"""Figures of a tuning run drawn with OpenCV (no plotting library needed): line charts for the noise-score
curves and the selection history, and lanes drawn over test images."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..data import synth

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]  # RGB
Series = Tuple[Sequence[float], Sequence[float]]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def chart(series: Dict[str, Series], title: str, xlabel: str, ylabel: str, logx: bool = False,
          size: Tuple[int, int] = (640, 400), highlight: Optional[Dict[str, Sequence[bool]]] = None) -> np.ndarray:
    """An RGB line chart; ``highlight[name][i]`` draws point i of a series as a filled marker."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, 150, 34, 46
    pts_all = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if np.isfinite(y) and (x > 0 or not logx)]
    if not pts_all:
        pts_all = [(1.0, 0.0)]
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    x0, x1 = min(fx(p[0]) for p in pts_all), max(fx(p[0]) for p in pts_all)
    y0, y1 = min(0.0, min(p[1] for p in pts_all)), max(p[1] for p in pts_all)
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y1 = y0 + 1
    y1 += 0.05 * (y1 - y0)

    def px(x, y):
        return (int(left + (fx(x) - x0) / (x1 - x0) * (w - left - right)),
                int(h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)))

    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for t in _nice_ticks(y0, y1):
        _, yy = px(10 ** x0 if logx else x0, t)
        cv2.line(img, (left - 4, yy), (left, yy), (0, 0, 0), 1)
        cv2.putText(img, f"{t:g}", (4, yy + 4), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    xt = [10 ** e for e in range(math.floor(x0), math.ceil(x1) + 1)] if logx else _nice_ticks(x0, x1)
    for t in xt:
        if not (x0 - 1e-9 <= fx(t) <= x1 + 1e-9):
            continue
        xx, _ = px(t, y0)
        cv2.line(img, (xx, h - bottom), (xx, h - bottom + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{t:g}", (xx - 12, h - bottom + 18), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (left + 120, h - 8), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (4, top - 8), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (name, (xs, ys)) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        pts = [px(x, y) for x, y in zip(xs, ys) if np.isfinite(y) and (x > 0 or not logx)]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
        marks = (highlight or {}).get(name)
        for i, p in enumerate(pts):
            filled = marks is not None and i < len(marks) and marks[i]
            cv2.circle(img, p, 5 if filled else 3, color, -1 if filled else 1, cv2.LINE_AA)
        ly = top + 16 + 20 * k
        cv2.line(img, (w - right + 10, ly - 4), (w - right + 30, ly - 4), color, 2)
        cv2.putText(img, name[:16], (w - right + 36, ly), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def curves_figure(curves, levels_at_start: Optional[Dict[str, float]] = None) -> np.ndarray:
    """Noise-score curves on one axis: noise RMS relative to each head's output RMS."""
    series = {name: ([l / c.output_rms for l in c.levels], c.scores) for name, c in curves.items()}
    img = chart(series, "noise-score curves (Lane Distortion Score)", "noise RMS / head output RMS", "LDS", logx=True)
    return img


def selection_figure(history: List[dict]) -> np.ndarray:
    """Two panels over the iterations: each head's error relative to its first measurement (filled marker:
    selected at that refresh), and the Lane Distortion Score its curve predicts."""
    heads = list(history[0]["levels"]) if history else []
    its = [h["iteration"] for h in history]
    rel = {n: ([float(i) for i in its], [h["levels"][n] / max(history[0]["levels"][n], 1e-12) for h in history])
           for n in heads}
    marks = {n: [n in h["selected"] and not h.get("final") for h in history] for n in heads}
    top = chart(rel, "error level per head (filled: selected)", "iteration", "RMS / initial", highlight=marks)
    if history and history[0].get("predicted"):
        pred = {n: ([float(i) for i in its], [h["predicted"].get(n, float("nan")) for h in history]) for n in heads}
        bottom = chart(pred, "predicted Lane Distortion Score", "iteration", "LDS", highlight=marks)
        return np.concatenate([top, bottom], 0)
    return top


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
