"""GANet's decoder: keypoints on a stride-8 heatmap, grouped into lanes by the start point each one points
to.

A keypoint is a horizontal local maximum of the heatmap's probability above ``threshold``; its
``int_offset`` refines its position and its ``pts_offset`` points at its lane's start. Keypoints whose
start offset is shorter than ``seed_dist`` are seeds; seeds closer than ``cluster_dist`` merge (strongest
first); every keypoint joins the nearest seed centre within ``assign_dist`` of its start point. A lane's
score is the mean probability of its keypoints.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decoder

STRIDE = 8
THRESHOLD = 0.4
SEED_DIST = 1.0
CLUSTER_DIST = 5.0
ASSIGN_DIST = 4.0
# Candidate keypoints kept per image (the strongest): clustering is quadratic in them (the C++ decoder's
# kGANetMaxKeypoints).
MAX_KEYPOINTS = 4096


class GANetDecoder(Decoder):
    name = "ganet"

    def __init__(self, model_input, stride: int = STRIDE):
        super().__init__(model_input)
        self.stride = stride

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, seed_dist: float = SEED_DIST,
               cluster_dist: float = CLUSTER_DIST, assign_dist: float = ASSIGN_DIST):
        xs, scores = torch.ops.selfocus.decode_ganet(
            kpts_hm=outputs["kpts_hm"], pts_offset=outputs["pts_offset"], int_offset=outputs["int_offset"],
            **self.frame_args(), threshold=threshold, seed_dist=seed_dist, cluster_dist=cluster_dist,
            assign_dist=assign_dist, stride=self.stride)
        return self.laneset_from_tensors(xs, scores)

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = THRESHOLD, seed_dist: float = SEED_DIST,
                  cluster_dist: float = CLUSTER_DIST, assign_dist: float = ASSIGN_DIST):
        hm = torch.sigmoid(outputs["kpts_hm"].detach().float())
        keep = hm == F.max_pool2d(hm, (1, 3), stride=1, padding=(0, 1))
        hm = (hm * keep).cpu().numpy()[:, 0]
        pts = outputs["pts_offset"].detach().float().cpu().numpy()
        intr = outputs["int_offset"].detach().float().cpu().numpy()
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for b in range(hm.shape[0]):
            lanes, lane_scores = self._image(hm[b], pts[b], intr[b], threshold, seed_dist, cluster_dist, assign_dist)
            images.append(lanes)
            scores.append(lane_scores)
        return self.points_to_laneset(images, scores)

    def _image(self, hm, pts, intr, threshold, seed_dist, cluster_dist, assign_dist):
        rr, cc = np.nonzero(hm > threshold)
        if len(rr) > MAX_KEYPOINTS:  # the strongest, still in row-major order
            keep = np.sort(np.argsort(-hm[rr, cc], kind="stable")[:MAX_KEYPOINTS])
            rr, cc = rr[keep], cc[keep]
        if len(rr) == 0:
            return [], []
        pos_x = cc + 0.5 + intr[0, rr, cc]
        pos_y = rr + 0.5 + intr[1, rr, cc]
        start_x = cc + 0.5 + pts[0, rr, cc]
        start_y = rr + 0.5 + pts[1, rr, cc]
        conf = hm[rr, cc]
        seeds = np.hypot(pts[0, rr, cc], pts[1, rr, cc]) < seed_dist
        # cluster seed positions (greedy, strongest first)
        centres: List[np.ndarray] = []
        for i in np.argsort(-conf, kind="stable"):
            if not seeds[i]:
                continue
            p = np.array([pos_x[i], pos_y[i]])
            if all(np.hypot(*(p - c)) > cluster_dist for c in centres):
                centres.append(p)
        lanes, lane_scores = [[] for _ in centres], [[] for _ in centres]
        if centres:
            C = np.stack(centres)
            d = np.hypot(start_x[:, None] - C[None, :, 0], start_y[:, None] - C[None, :, 1])
            owner = d.argmin(1)
            for i in range(len(rr)):
                if d[i, owner[i]] <= assign_dist:
                    lanes[owner[i]].append((pos_x[i], pos_y[i]))
                    lane_scores[owner[i]].append(conf[i])
        out_lanes, out_scores = [], []
        for lane, sc in zip(lanes, lane_scores):
            if len(lane) < 2:
                continue
            a = np.array(sorted(lane, key=lambda q: -q[1]), np.float32) * self.stride - 0.5
            out_lanes.append(a)
            out_scores.append(float(np.mean(sc)))
        return out_lanes, out_scores
