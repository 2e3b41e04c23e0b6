"""The published keypoint post-processings: CondLaneNet's (``condlane-published``) and GANet's
(``ganet-published``), both the official implementations' CULane test settings. Points come out in frame
pixels.

CondLaneNet: proposals are 3x3 local maxima of the clamped sigmoid above 0.5, grouped when within 4 cells of
a group member (the implementation keeps the LAST member of each group: its "highest score" choice never
updates the score it compares with); per kept proposal the column of each row is the softmax-expected column
of its dynamic location convolution, truncated, over the rows from one above the first to one below the last
covered row, x = (column + offset) * 8 and y = row * 8 in input pixels, scaled to the frame.

GANet (``group_fast`` by centre): key points are 1x3 local maxima of the clamped sigmoid above 0.4; start
points (vertical offset below 1), column by column, grouped within 5 and reduced to integer means; each key
point joins the first group whose mean lies within 5 of its start estimate; a group of more than 10 points is
a lane at (point + correction) * 8, scaled and truncated to integers.

``reference`` is that in torch/numpy (equal to the implementations: tests/test_published_condlane.py and
test_published_ganet.py); where the implementations stop with an error or index outside a map (a NaN head
value reaching an integer conversion) the point is left out instead. ``native`` runs
``torch.ops.selfocus.decode_condlane_published`` / ``decode_ganet_published``
(csrc/core/decoders/published/condlane.h, ganet.h), batched, with an optional leading Monte-Carlo dimension
on any head; CondLaneNet's op runs the dynamic convolutions, softmax and expectation with ATen's CPU kernels,
the implementation's own calls, item by item.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decoder, points_to_laneset

Points = Tuple[List[List[np.ndarray]], List[List[float]]]
LANES = 16  # the implementations write every lane; the LaneSet, scored, holds 16
MASK_BIAS = 2.19  # subtracted from both dynamic convolutions' biases, as published


def _clamped_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(x.detach().float().cpu()), min=1e-4, max=1 - 1e-4)


def _to_int(v) -> float:
    """Python's int() of a coordinate, as a float; NaN where there is no int (the implementation stops)."""
    return float(int(v)) if math.isfinite(v) else math.nan


class _KeypointDecoder(Decoder):
    def _frame_ratios(self):
        mi = self.model_input
        W, H = mi.size
        return mi.frame.width / W, (mi.frame.height - mi.crop_top) / H, mi.crop_top

    def _frame_args(self) -> dict:
        mi = self.model_input
        return dict(ys=torch.from_numpy(mi.frame.ys), input_width=int(mi.size[0]), input_height=int(mi.size[1]),
                    frame_width=int(mi.frame.width), frame_height=int(mi.frame.height),
                    crop_top=float(mi.crop_top))


# ---- CondLaneNet ---------------------------------------------------------------------------------------------
def dynamic_inputs(features: torch.Tensor) -> torch.Tensor:
    """The dynamic convolutions' input: (x / w, y / w, features) at every pixel -- both coordinates divided
    by the width, as published."""
    B, _, h, w = features.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=features.dtype, device=features.device),
                            torch.arange(w, dtype=features.dtype, device=features.device), indexing="ij")
    loc = torch.stack([xs, ys])[None].expand(B, 2, h, w) / w
    return torch.cat([loc, features], dim=1)


def grouped_dynamic_conv(features: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """params [n, C + 3] applied as n 1x1 convolutions on ``dynamic_inputs(features)`` [1, C + 2, h, w], one
    group each (the implementation's grouped convolution) -> [n, h, w]."""
    n, d = params.shape
    x = dynamic_inputs(features).repeat(1, n, 1, 1)
    weight = params[:, :d - 1].reshape(n, d - 1, 1, 1)
    return F.conv2d(x, weight, params[:, d - 1] - MASK_BIAS, groups=n)[0]


def keep_last_of_groups(seeds, distance: float) -> List[int]:
    """The implementation's proposal grouping: each proposal joins the first group holding a member within
    ``distance`` (cells), else starts one; of each group the last member is kept."""
    groups: List[List[int]] = []
    for i, ((x, y), _) in enumerate(seeds):
        for g in groups:
            if any(math.sqrt((x - seeds[j][0][0]) ** 2 + (y - seeds[j][0][1]) ** 2) <= distance for j in g):
                g.append(i)
                break
        else:
            groups.append([i])
    return [g[-1] for g in groups]


def row_span(valid: np.ndarray):
    """Rows a lane covers: one above its first valid row to one below its last, inside the map."""
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return None, None
    return max(0, int(idx[0]) - 1), min(len(valid) - 1, int(idx[-1]) + 1)


class CondLanePublishedDecoder(_KeypointDecoder):
    name = "condlane-published"

    def points(self, outputs, threshold: float = 0.5, group_distance: float = 4.0) -> Points:
        """Per image, (lanes as (N, 2) frame points, their proposal scores)."""
        hm = _clamped_sigmoid(outputs["hm"])
        peaks = hm * (F.max_pool2d(hm, 3, stride=1, padding=1) == hm).float()
        params = outputs["params"].detach().float().cpu()
        features = outputs["features"].detach().float().cpu()
        valid_rows = outputs["range"].detach().float().cpu().argmax(-1).numpy()  # [B, N, h8]
        W = self.model_input.size[0]
        ratio_x, ratio_y, crop = self._frame_ratios()
        h8, w8 = features.shape[-2:]
        stride = W / w8
        d = features.shape[1] + 3
        images, scores = [], []
        for b in range(hm.shape[0]):
            heat = peaks[b, 0].numpy()
            ys, xs = np.where(heat > threshold)
            seeds = [((int(x), int(y)), heat[y, x]) for y, x in zip(ys, xs)]
            kept = keep_last_of_groups(seeds, group_distance)
            lanes, lane_scores = [], []
            if kept:
                # the dynamic convolutions of every proposal, one group each, as the implementation runs them
                # (the grouping only picks among them afterwards)
                cells = [y * heat.shape[1] + x for (x, y), _ in seeds]
                p = params[b].flatten(1).t()[cells]  # [n, 2 (C + 3)]
                masks = grouped_dynamic_conv(features[b:b + 1], p[:, :d])[kept]
                offsets = grouped_dynamic_conv(features[b:b + 1], p[:, d:])[kept]
                cells = [cells[k] for k in kept]
                expected = (F.softmax(masks, dim=-1) * torch.arange(w8, dtype=torch.float32)).sum(-1).numpy()
                # an expectation that is no column (NaN logits) has no point (the implementation indexes
                # outside the map there)
                is_column = (expected > -1) & (expected < w8)
                columns = np.where(is_column, expected, 0).astype(np.int32)
                for i, cell in enumerate(cells):
                    first, last = row_span(valid_rows[b, cell])
                    if first is None:
                        continue
                    rows = np.arange(first, last + 1)
                    cols = columns[i, rows]
                    points = np.stack([cols, rows], 1).astype(np.float32)
                    points[:, 0] = points[:, 0] + offsets[i].numpy()[rows, cols]
                    points[~is_column[i, rows], 0] = np.nan
                    points *= stride
                    if len(points) > 1:
                        for pt in points:  # the writer's scalar arithmetic, stored back as float32
                            pt[0] = float(pt[0] * ratio_x)
                            pt[1] = float(pt[1] * ratio_y + crop)
                        lanes.append(points.astype(np.float64))
                        lane_scores.append(float(seeds[kept[i]][1]))
            images.append(lanes)
            scores.append(lane_scores)
        return images, scores

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = 0.5, group_distance: float = 4.0,
                  max_lanes: int = LANES):
        images, scores = self.points(outputs, threshold, group_distance)
        return points_to_laneset(self.model_input, images, scores, max_lanes=max_lanes, in_frame=True)

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = 0.5, group_distance: float = 4.0,
               max_lanes: int = LANES):
        xs, scores = torch.ops.selfocus.decode_condlane_published(
            hm=outputs["hm"], params=outputs["params"], features=outputs["features"], range=outputs["range"],
            max_lanes=max_lanes, threshold=threshold, group_distance=group_distance, **self._frame_args())
        return self.laneset_from_tensors(xs, scores)


# ---- GANet ---------------------------------------------------------------------------------------------------
def group_means(points, distance: float):
    """Points grouped when within ``distance`` of a member of a group (first match), each group's integer mean."""
    groups = []
    for p in points:
        for g in groups:
            if any(math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2) <= distance for q in g):
                g.append(p)
                break
        else:
            groups.append([p])
    return [np.mean(np.array(g).reshape(-1, 2), axis=0, dtype=int) for g in groups]


class GANetPublishedDecoder(_KeypointDecoder):
    name = "ganet-published"

    def points(self, outputs, threshold: float = 0.4, root_threshold: float = 1.0, cluster_distance: float = 5.0,
               min_points: int = 10) -> Points:
        """Per image, (lanes as (N, 2) frame points, their scores: numpy's mean of the points' probabilities)."""
        kpts = _clamped_sigmoid(outputs["kpts_hm"])
        peaks = kpts * (F.max_pool2d(kpts, (1, 3), stride=1, padding=(0, 1)) == kpts).float()
        offset = outputs["pts_offset"].detach().float().cpu().numpy()
        error = outputs["int_offset"].detach().float().cpu().numpy()
        W = self.model_input.size[0]
        ratio_x, ratio_y, crop = self._frame_ratios()
        stride = W // peaks.shape[-1]
        images, scores = [], []
        for b in range(peaks.shape[0]):
            heat = peaks[b, 0].numpy()
            on = heat > threshold
            # start points, listed column by column as the implementation lists them
            xs, ys = np.where((on & (offset[b, 1] < root_threshold)).T)
            centers = group_means([np.array(p) for p in zip(xs, ys)], cluster_distance)
            groups = [[] for _ in centers]
            ys, xs = np.where(on)
            for y, x in zip(ys, xs):
                fx, fy = np.float32(x), np.float32(y)  # the implementation adds on a float32 coordinate grid
                start = np.array([fx + offset[b, 0, y, x], fy + offset[b, 1, y, x]], dtype=np.float64)
                for g, c in enumerate(centers):
                    if math.sqrt((start[0] - c[0]) ** 2 + (start[1] - c[1]) ** 2) <= cluster_distance:
                        groups[g].append((fx + error[b, 0, y, x], fy + error[b, 1, y, x], heat[y, x]))
                        break
            lanes, lane_scores = [], []
            for group in groups:
                if len(group) <= 1:
                    continue
                # the writer's arithmetic: float32 point times the stride, scaled, truncated to int
                pts = [(_to_int(ax * stride * ratio_x), _to_int(ay * stride * ratio_y + crop)) for ax, ay, _ in group]
                if len(pts) > min_points:
                    lanes.append(np.array(pts, np.float64))
                    lane_scores.append(float(np.mean([s for _, _, s in group])))
            images.append(lanes)
            scores.append(lane_scores)
        return images, scores

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = 0.4, root_threshold: float = 1.0,
                  cluster_distance: float = 5.0, min_points: int = 10, max_lanes: int = LANES):
        images, scores = self.points(outputs, threshold, root_threshold, cluster_distance, min_points)
        return points_to_laneset(self.model_input, images, scores, max_lanes=max_lanes, in_frame=True)

    def native(self, outputs: Dict[str, torch.Tensor], threshold: float = 0.4, root_threshold: float = 1.0,
               cluster_distance: float = 5.0, min_points: int = 10, max_lanes: int = LANES):
        xs, scores = torch.ops.selfocus.decode_ganet_published(
            kpts_hm=outputs["kpts_hm"], pts_offset=outputs["pts_offset"], int_offset=outputs["int_offset"],
            max_lanes=max_lanes, threshold=threshold, root_threshold=root_threshold,
            cluster_distance=cluster_distance, min_points=min_points, **self._frame_args())
        return self.laneset_from_tensors(xs, scores)
