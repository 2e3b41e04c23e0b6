"""BezierLaneNet's decoder: one cubic Bezier curve per query, kept where its probability is a local peak.

A query is kept where its probability exceeds ``threshold`` and is the maximum of a ``window`` of
neighbouring queries (the 1-D peak test of the published model, in place of NMS); its control points
(normalised to the input) are sampled at ``SAMPLES`` evenly spaced curve parameters and the points inside
the input form the lane.
"""
from __future__ import annotations

from math import comb
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decoder

THRESHOLD = 0.5
WINDOW = 5
SAMPLES = 50


def bernstein(t: np.ndarray) -> np.ndarray:
    """[len(t), 4] cubic Bernstein basis."""
    t = np.asarray(t, np.float64)[:, None]
    k = np.arange(4)[None, :]
    return np.array([comb(3, i) for i in range(4)])[None, :] * t ** k * (1 - t) ** (3 - k)


class BezierDecoder(Decoder):
    name = "bezier"

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, window: int = WINDOW):
        xs, scores = torch.ops.selfocus.decode_bezier(
            logits=outputs["logits"], curves=outputs["curves"], **self.frame_args(input_size=True),
            threshold=threshold, window=window, samples=SAMPLES)
        return self.laneset_from_tensors(xs, scores)

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, window: int = WINDOW):
        W, H = self.model_input.size
        p = torch.sigmoid(outputs["logits"].detach().float())
        peak = p == F.max_pool1d(p[:, None], window, stride=1, padding=window // 2)[:, 0]
        keep = ((p > threshold) & peak).cpu().numpy()
        p = p.cpu().numpy()
        curves = outputs["curves"].detach().float().cpu().numpy()
        basis = bernstein(np.linspace(0, 1, SAMPLES)).astype(np.float32)
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for b in range(p.shape[0]):
            lanes, sc = [], []
            for q in np.nonzero(keep[b])[0]:
                pts = basis @ curves[b, q] * np.array([W, H], np.float32)
                ok = (pts[:, 0] >= 0) & (pts[:, 0] <= W - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= H - 1)
                if np.count_nonzero(ok) >= 2:
                    lanes.append(pts[ok])
                    sc.append(float(p[b, q]))
            images.append(lanes)
            scores.append(sc)
        return self.points_to_laneset(images, scores)
