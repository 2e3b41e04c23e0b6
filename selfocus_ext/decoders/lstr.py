"""LSTR's decoder: one polynomial lane per query, the queries above ``threshold`` (at most ``max_lanes``).

A query's curve (lower and upper y, then k, f, m, n, b, b') gives x = k / (y - f)^2 + m / (y - f) + n + b y
- b' in normalised input coordinates; it is read on the normalised input rows of the frame's rows the
input shows (``sample_ys``), inside [lower, upper] and inside the image.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch

from ..lanes.frames import ModelInput
from .activations import softmax_foreground
from .base import Decoder

THRESHOLD = 0.95
MAX_LANES = 4


def sample_ys(model_input: ModelInput) -> np.ndarray:
    """Normalised input y of the frame rows the input shows (the rows a curve is read on)."""
    H = model_input.size[1]
    _, rows = model_input.to_input(np.zeros_like(model_input.frame.ys), model_input.frame.ys)
    rows = rows[(rows >= 0) & (rows <= H - 1)]
    return (rows / H).astype(np.float32)


class LSTRDecoder(Decoder):
    name = "lstr"

    def __init__(self, model_input):
        super().__init__(model_input)
        self.sample_ys = sample_ys(model_input)

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, max_lanes: int = MAX_LANES):
        xs, scores = torch.ops.selfocus.decode_lstr(
            logits=outputs["logits"], curves=outputs["curves"], sample_ys=torch.from_numpy(self.sample_ys),
            **self.frame_args(input_size=True), threshold=threshold, max_keep=max_lanes)
        return self.laneset_from_tensors(xs, scores)

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, max_lanes: int = MAX_LANES):
        W, H = self.model_input.size
        prob = softmax_foreground(outputs["logits"].detach().float()).cpu().numpy()
        curves = outputs["curves"].detach().float().cpu().numpy()
        ys = self.sample_ys
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for bi in range(prob.shape[0]):
            lanes, sc = [], []
            keep = [q for q in np.argsort(-prob[bi], kind="stable") if prob[bi, q] > threshold][:max_lanes]
            for q in sorted(keep):
                c = curves[bi, q]
                k, f, m, n, b, b2 = (np.float32(v) for v in c[2:])
                d = ys - f
                x = k / (d * d) + m / d + n + b * ys - b2
                ok = np.isfinite(x) & (x >= 0) & (x <= 1) & (ys > c[0]) & (ys < c[1])
                if np.count_nonzero(ok) >= 2:
                    lanes.append(np.stack([x[ok] * np.float32(W), ys[ok] * np.float32(H)], 1))
                    sc.append(float(prob[bi, q]))
            images.append(lanes)
            scores.append(sc)
        return self.points_to_laneset(images, scores)
