"""CondLaneNet's decoder: lane starts on a stride-16 proposal map, each lane's row locations from two
dynamic 1x1 convolutions run on the shared stride-8 features.

Proposals are 3x3 local maxima of the proposal probability above ``threshold``, strongest first, merged
within ``merge_dist`` proposal cells, at most ``max_seeds`` per image. A proposal cell's ``params`` hold the
weights of the *location* conv (per-row softmax over columns: the expected column) and the *offset* conv
(the sub-column correction read at the rounded column); a row belongs to the lane where the ``range``
probability at that cell exceeds ``range_threshold``. The convolutions are part of decoding, so that the
noise-score curves perturb their parameters like any head.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decoder

STRIDE = 8  # the shared features
THRESHOLD = 0.5
RANGE_THRESHOLD = 0.5
MERGE_DIST = 2.0  # proposal cells
MAX_SEEDS = 16


class CondLaneDecoder(Decoder):
    name = "condlane"

    def __init__(self, model_input, stride: int = STRIDE):
        super().__init__(model_input)
        self.stride = stride

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD,
               range_threshold: float = RANGE_THRESHOLD, merge_dist: float = MERGE_DIST, max_seeds: int = MAX_SEEDS):
        xs, scores = torch.ops.selfocus.decode_condlane(
            proposal=outputs["proposal"], params=outputs["params"], features=outputs["features"],
            range=outputs["range"], **self.frame_args(), threshold=threshold, range_threshold=range_threshold,
            merge_dist=merge_dist, max_seeds=max_seeds, stride=self.stride)
        return self.laneset_from_tensors(xs, scores)

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD,
                  range_threshold: float = RANGE_THRESHOLD, merge_dist: float = MERGE_DIST, max_seeds: int = MAX_SEEDS):
        """Plain Python, the dynamic convolutions in float64."""
        prop = torch.sigmoid(outputs["proposal"].detach().float())
        peak = prop == F.max_pool2d(prop, 3, stride=1, padding=1)
        prop = prop.cpu().numpy()[:, 0]
        peak = peak.cpu().numpy()[:, 0]
        rng = torch.sigmoid(outputs["range"].detach().float()).cpu().numpy()
        params = outputs["params"].detach().float().cpu().numpy().astype(np.float64)
        feats = outputs["features"].detach().float().cpu().numpy().astype(np.float64)
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for b in range(feats.shape[0]):
            lanes, sc = [], []
            for cell in _seeds(prop[b], peak[b], threshold, merge_dist, max_seeds):
                r0, q0 = divmod(cell, prop.shape[-1])
                pts = self._lane(params[b, :, r0, q0], feats[b], rng[b, :, r0, q0], r0, q0, prop.shape[-2:],
                                 range_threshold)
                if len(pts) >= 2:
                    lanes.append(np.array(pts, np.float32))
                    sc.append(float(prop[b, r0, q0]))
            images.append(lanes)
            scores.append(sc)
        return self.points_to_laneset(images, scores)

    def _lane(self, params, feats, rng, r0, q0, proposal_shape, range_threshold):
        """Points of the lane that starts at proposal cell (r0, q0): per row in its range, the expected
        column of the location conv's softmax, refined by the offset conv at the rounded column."""
        C, h8, w8 = feats.shape
        h16, w16 = proposal_shape
        n_w = C + 3
        xp, yp = (q0 + 0.5) * (w8 / w16) - 0.5, (r0 + 0.5) * (h8 / h16) - 0.5
        wl, wo = params[:n_w], params[n_w:]
        rthr = np.float32(range_threshold)
        pts = []
        for y in range(h8):
            if not rng[y] > rthr:
                continue
            ry = (y - yp) / h8
            logits = wl[:C] @ feats[:, y, :] + wl[C] * ((np.arange(w8) - xp) / w8) + wl[C + 1] * ry + wl[C + 2]
            with np.errstate(invalid="ignore", over="ignore"):
                e = np.exp(logits - logits.max())
                expected = float((e * np.arange(w8)).sum() / e.sum())
            if not (0.0 <= expected <= w8 - 1):
                continue
            col = int(np.floor(expected + 0.5))
            off = wo[:C] @ feats[:, y, col] + wo[C] * ((col - xp) / w8) + wo[C + 1] * ry + wo[C + 2]
            pts.append(((col + off + 0.5) * self.stride - 0.5, (y + 0.5) * self.stride - 0.5))
        return pts


def _seeds(prop: np.ndarray, peak: np.ndarray, threshold: float, merge_dist: float, max_seeds: int) -> List[int]:
    """Flat indices of the proposal cells that start lanes: peaks above the threshold, strongest first, none
    within merge_dist cells of a stronger one, at most max_seeds."""
    w16 = prop.shape[-1]
    thr, md2 = np.float32(threshold), float(np.float32(merge_dist)) ** 2
    flat = prop.ravel()
    cand = np.flatnonzero((flat > thr) & peak.ravel())
    cand = cand[np.argsort(-flat[cand], kind="stable")]
    kept: List[int] = []
    for cell in cand:
        if len(kept) == max_seeds:
            break
        r, q = divmod(int(cell), w16)
        if all((r - k // w16) ** 2 + (q - k % w16) ** 2 >= md2 for k in kept):
            kept.append(int(cell))
    return kept
