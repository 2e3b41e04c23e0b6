"""Python face of the lane ops: the Lane Distortion Score, the exact assignment and the CULane matching,
with their fake kernels (shapes only, for torch.compile and meta tensors)."""
from __future__ import annotations

from typing import Tuple

import torch

from .. import native  # noqa: F401  (registers torch.ops.selfocus.*)
from .devices import same_device


def lane_distortion(ref_xs: torch.Tensor, pert_xs: torch.Tensor, ys: torch.Tensor, width: float = 30.0,
                    penalty: float = 1.0, min_iou: float = 0.5) -> torch.Tensor:
    """Lane Distortion Score of xs [B, L', R] (-> [B]) or [K, B, L', R] (-> [K, B]) against ref xs [B, L, R]
    on rows ys [R] (selfocus_ext.lanes.distortion_score is the LaneSet-aware entry point)."""
    return torch.ops.selfocus.lane_distortion(ref_xs.float(), pert_xs.float(), ys, float(width), float(penalty),
                                              float(min_iou))


@torch.library.register_fake("selfocus::lane_distortion")
def _lane_distortion_fake(ref, pert, ys, width=30.0, penalty=1.0, min_iou=0.5):
    same_device("lane_distortion", ref=ref, pert=pert, ys=ys)
    if pert.dim() == 4:
        return ref.new_empty((pert.shape[0], ref.shape[0]))
    return ref.new_empty((ref.shape[0],))


def max_weight_matching(weight: torch.Tensor) -> torch.Tensor:
    """One-to-one matching of rows to columns maximising the total weight (Kuhn-Munkres, C++): for each row
    the matched column or -1. At most 64 rows and columns."""
    return torch.ops.selfocus.max_weight_matching(weight.detach().float().cpu())


@torch.library.register_fake("selfocus::max_weight_matching")
def _max_weight_matching_fake(weight):
    return weight.new_empty((weight.shape[0],), dtype=torch.int64)


def culane_match(pred_points, pred_lanes, pred_images, gt_points, gt_lanes, gt_images, width: int = 1640,
                 height: int = 590, lane_width: int = 30, matcher: str = "official"):
    """CULane matching of many images given as CSR tensors (selfocus_ext.metrics.culane.pack_lanes): the matched
    prediction of every GT lane (-1 for none) and every image's [n_gt, n_pred] IoUs, flattened (float64)."""
    return torch.ops.selfocus.culane_match(pred_points, pred_lanes, pred_images, gt_points, gt_lanes, gt_images,
                                           int(width), int(height), int(lane_width), str(matcher))


@torch.library.register_fake("selfocus::culane_match")
def _culane_match_fake(pred_points, pred_lanes, pred_images, gt_points, gt_lanes, gt_images, width=1640, height=590,
                       lane_width=30, matcher="official"):
    same_device("culane_match", pred_points=pred_points, pred_lanes=pred_lanes, pred_images=pred_images,
                gt_points=gt_points, gt_lanes=gt_lanes, gt_images=gt_images)
    # The IoU block sizes depend on the offsets' values.
    pairs = torch.library.get_ctx().new_dynamic_size()
    return gt_lanes.new_empty((gt_lanes.shape[0] - 1,)), gt_points.new_empty((pairs,), dtype=torch.float64)


def line_nms(proposals: torch.Tensor, scores: torch.Tensor, threshold: float, top_k: int,
             layout: Tuple[int, int, int] = (0, 1, 2)) -> torch.Tensor:
    """Line suppression of anchor proposals in descending score order: indices of the kept proposals, at most
    ``top_k`` (C++, csrc/core/line_nms.h; CPU). ``layout``: the positions of (start, length, first x) in a
    proposal: (0, 1, 2) pytorch-auto-drive's, (2, 4, 5) the official LaneATT / CLRNet 77-value one."""
    extra = () if tuple(layout) == (0, 1, 2) else tuple(int(i) for i in layout)  # the schema's defaults
    return torch.ops.selfocus.line_nms(proposals.detach().float().cpu(), scores.detach().cpu(), float(threshold),
                                       int(top_k), *extra)


@torch.library.register_fake("selfocus::line_nms")
def _line_nms_fake(proposals, scores, threshold, top_k, start_index=0, length_index=1, xs_index=2):
    kept = torch.library.get_ctx().new_dynamic_size(max=max(0, min(proposals.shape[0], top_k)))
    return proposals.new_empty((kept,), dtype=torch.int64)
