"""The Lane Distortion Score (docs/lanes.md): how far perturbed lanes are from reference lanes."""
from __future__ import annotations

from typing import Union

import torch

from ..ops.lanes import lane_distortion, max_weight_matching  # noqa: F401  (max_weight_matching: re-exported)
from .laneset import LaneSet

LanesLike = Union[LaneSet, torch.Tensor]


def _xs(lanes: LanesLike, name: str) -> torch.Tensor:
    if isinstance(lanes, LaneSet):
        return lanes.xs
    if isinstance(lanes, torch.Tensor):
        return lanes
    raise TypeError(f"{name} must be a LaneSet or a tensor of x values, got {type(lanes).__name__}")


def distortion_score(
    ref: LanesLike,
    pert: LanesLike,
    ys: torch.Tensor = None,
    width: float = 30.0,
    penalty: float = 1.0,
    min_iou: float = 0.5,
) -> torch.Tensor:
    """Lane Distortion Score of ``pert`` against ``ref``, one value per image.

    ``ref``: LaneSet or xs [B, L, R]. ``pert``: LaneSet or xs [B, L', R], or [K, B, L', R] for K perturbed
    versions of the same B images (the Monte-Carlo shape; the reference is not copied) -> result [K, B].
    ``ys`` is taken from a LaneSet argument when not given.
    """
    if ys is None:
        for lanes in (ref, pert):
            if isinstance(lanes, LaneSet):
                ys = lanes.ys
                break
        else:
            raise ValueError("distortion_score: ys is needed when neither ref nor pert is a LaneSet")
    if isinstance(ref, LaneSet) and isinstance(pert, LaneSet) and not torch.equal(ref.ys, pert.ys):
        raise ValueError("distortion_score: ref and pert are sampled on different rows (ys differ)")
    ref_xs = _xs(ref, "ref")
    pert_xs = _xs(pert, "pert")
    ys = torch.as_tensor(ys, dtype=torch.float32, device=ref_xs.device)
    return lane_distortion(ref_xs, pert_xs, ys, width, penalty, min_iou)
