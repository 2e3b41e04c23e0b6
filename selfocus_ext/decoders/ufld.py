"""The row-anchor decoder of Ultra-Fast-Lane-Detection v1 (the implementation's CULane writer).

Heads: ``loc`` [B, cells, rows, lanes] (grid-cell logits, top row first) and ``exist`` [B, rows, lanes]
(logsumexp of the cells minus the "absent" logit). With the rows flipped bottom-up, a row has a point where
some cell's logit beats the absent one (``logsumexp - exist > max``), at the softmax expectation over the
cells (cells counted from 1); a lane with more than two points is written, x = int(expectation * cell pitch
* frame width / input width) - 1 and y = frame height - 1 - 20 * row. A lane's score (ours: the
implementation writes none) is the mean of sigmoid(exist) over its points, summed in double in row order (a
NaN existence value counted as 0, so that every written lane has a score).

``reference`` is that computation in numpy (the softmax as the implementation computes it); ``native`` runs
``torch.ops.selfocus.decode_ufld`` (csrc/core/decoders/ufld.h) on the same softmax, with an optional leading
Monte-Carlo dimension on either head.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
import torch

from .base import Decoder, points_to_laneset

ROW_GAP = 20  # frame pixels between row anchors (CULane)
LANES = 4


def row_anchor_softmax(loc_flipped: np.ndarray) -> np.ndarray:
    """Softmax over the cell axis (-3) in float32, as the implementation computes it (NaN and infinite logits
    give NaN without a warning)."""
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.exp(loc_flipped - loc_flipped.max(-3, keepdims=True))
        return shifted / shifted.sum(-3, keepdims=True)


def _sigmoid_or_zero(x: float) -> float:
    """1 / (1 + exp(-x)) in double as C computes it (exp overflowing to inf gives 0), NaN counted as 0."""
    if math.isnan(x):
        return 0.0
    try:
        e = math.exp(-x)
    except OverflowError:
        e = math.inf
    return 1.0 / (1.0 + e)


def _flipped(outputs: Dict[str, torch.Tensor]) -> Tuple[np.ndarray, np.ndarray]:
    loc = outputs["loc"].detach().float().cpu().numpy()
    exist = outputs["exist"].detach().float().cpu().numpy()
    return loc[..., ::-1, :], exist[..., ::-1, :]


class UFLDDecoder(Decoder):
    name = "ufld"

    def _sizes(self):
        mi = self.model_input
        return int(mi.size[0]), int(mi.frame.width), int(mi.frame.height)

    def points(self, outputs: Dict[str, torch.Tensor]) -> Tuple[List[List[np.ndarray]], List[List[float]]]:
        """Per image, (lanes as (N, 2) frame points in the writer's order, their scores): the reference."""
        loc, exist = _flipped(outputs)
        if loc.ndim != 4 or exist.ndim != 3:
            raise ValueError(f"{type(self).__name__}.reference: loc must be [B, cells, rows, lanes] and exist "
                             f"[B, rows, lanes], got {loc.shape} and {exist.shape}")
        w, W, H = self._sizes()
        cells = loc.shape[1]
        cell = (w - 1) / (cells - 1)
        prob = row_anchor_softmax(loc)
        expected = (prob * np.arange(1, cells + 1)[None, :, None, None]).sum(1)  # float64, as published
        # the arg-max is "absent" exactly when the absent logit exceeds every cell logit
        with np.errstate(invalid="ignore"):
            absent = np.logaddexp.reduce(loc.astype(np.float64), axis=1) - exist > loc.max(1)
        expected[absent] = 0
        images, scores = [], []
        for b in range(expected.shape[0]):
            lanes, sc = [], []
            for i in range(expected.shape[2]):
                col = expected[b, :, i]
                if np.count_nonzero(col != 0) <= 2:
                    continue
                k = np.nonzero(col > 0)[0]
                xs = np.array([int(col[j] * cell * W / w) - 1 for j in k], np.float64)
                ys = np.array([int(H - j * ROW_GAP) - 1 for j in k], np.float64)
                lanes.append(np.stack([xs, ys], 1).reshape(-1, 2))
                total = 0.0
                for j in k:
                    total += _sigmoid_or_zero(float(exist[b, j, i]))
                sc.append(float(np.float32(total / len(k))) if len(k) else 0.0)
            images.append(lanes)
            scores.append(sc)
        return images, scores

    def reference(self, outputs: Dict[str, torch.Tensor], max_lanes: int = LANES):
        images, scores = self.points(outputs)
        return points_to_laneset(self.model_input, images, scores, max_lanes=max_lanes, in_frame=True)

    def native(self, outputs: Dict[str, torch.Tensor], max_lanes: int = LANES):
        loc, exist = _flipped(outputs)
        prob = row_anchor_softmax(loc)
        w, W, H = self._sizes()
        xs, scores = torch.ops.selfocus.decode_ufld(
            prob=torch.from_numpy(np.ascontiguousarray(prob)), loc=torch.from_numpy(np.ascontiguousarray(loc)),
            exist=torch.from_numpy(np.ascontiguousarray(exist)), ys=torch.from_numpy(self.model_input.frame.ys),
            frame_width=W, frame_height=H, input_width=w, max_lanes=max_lanes, row_gap=ROW_GAP)
        return self.laneset_from_tensors(xs, scores)
