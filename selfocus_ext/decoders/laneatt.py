"""LaneATT's decoder: one lane proposal per anchor, kept by score with a distance suppression.

Each anchor is a line from the image's border with x sampled on fixed input rows (``anchor_xs`` [N, R] on
``row_ys``); the model's ``reg`` adds a length (rows from the anchor's first row) and a per-row x offset.
Anchors are visited strongest first while their probability exceeds ``threshold``; a lane whose mean
distance to an already kept one (over their common rows) is under ``nms_dist`` input pixels is dropped;
at most ``top_k`` lanes are kept per image.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch

from .base import Decoder
from .activations import softmax_foreground

THRESHOLD = 0.5
NMS_DIST = 12.0
TOP_K = 4


class LaneATTDecoder(Decoder):
    name = "laneatt"

    def __init__(self, model_input, anchor_xs: torch.Tensor, row_ys: np.ndarray):
        super().__init__(model_input)
        if anchor_xs.dim() != 2 or anchor_xs.shape[1] != len(row_ys):
            raise ValueError(f"LaneATTDecoder: anchor_xs must be [anchors, {len(row_ys)}] (one x per row of row_ys), "
                             f"got {tuple(anchor_xs.shape)}")
        self.anchor_xs, self.row_ys = anchor_xs, np.asarray(row_ys, np.float32)

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, nms_dist: float = NMS_DIST,
               top_k: int = TOP_K):
        args = self.frame_args(input_size=True)
        del args["input_height"]
        xs, scores = torch.ops.selfocus.decode_laneatt(
            cls_logits=outputs["cls_logits"], reg=outputs["reg"], anchor_xs=self.anchor_xs,
            row_ys=torch.from_numpy(self.row_ys), **args, threshold=threshold, nms_dist=nms_dist, top_k=top_k)
        return self.laneset_from_tensors(xs, scores)

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, nms_dist: float = NMS_DIST,
                  top_k: int = TOP_K):
        score = softmax_foreground(outputs["cls_logits"].detach().float()).cpu().numpy()
        reg = outputs["reg"].detach().float().cpu().numpy()
        ax = self.anchor_xs.detach().cpu().numpy()
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for b in range(score.shape[0]):
            lanes, lane_scores = self._image(ax, score[b], reg[b], threshold, nms_dist, top_k)
            images.append(lanes)
            scores.append(lane_scores)
        return self.points_to_laneset(images, scores)

    def _image(self, ax, score, reg, threshold, nms_dist, top_k):
        W = self.model_input.size[0]
        rows_n = len(self.row_ys)
        kept, lanes, sc = [], [], []
        for n in np.argsort(-score, kind="stable"):
            if score[n] <= threshold or len(kept) >= top_k:
                break
            xs = ax[n] + reg[n, 1:]
            start = np.nonzero(~np.isnan(ax[n]))[0]
            if len(start) == 0:
                continue
            k0 = start[0]
            length = max(0.0, float(reg[n, 0]))  # NaN covers no row, inf every row
            k1 = min(rows_n, k0 + (rows_n if length >= rows_n else int(round(length))))
            rows = np.arange(k0, k1)
            x = xs[rows]
            ok = np.isfinite(x) & (x >= 0) & (x <= W - 1)
            lane_xs = np.full(rows_n, np.nan, np.float32)
            lane_xs[rows[ok]] = x[ok]
            if np.count_nonzero(ok) < 2:
                continue
            if any(_mean_distance(lane_xs, other) < nms_dist for other in kept):
                continue
            kept.append(lane_xs)
            keep = ~np.isnan(lane_xs)
            lanes.append(np.stack([lane_xs[keep], self.row_ys[keep]], 1))
            sc.append(float(score[n]))
        return lanes, sc


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| over the rows both lanes cover (inf where they share none: never a duplicate)."""
    both = ~np.isnan(a) & ~np.isnan(b)
    return np.abs(a[both] - b[both]).mean() if both.any() else np.inf
