"""The Lane Distortion Score (docs/lanes.md): how far perturbed lanes are from reference lanes."""
from __future__ import annotations

from typing import Union

import torch

from .. import _native  # noqa: F401  (registers torch.ops.selfocus.*)
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
    return torch.ops.selfocus.lane_distortion(
        ref_xs.float(), pert_xs.float(), ys, float(width), float(penalty), float(min_iou)
    )


@torch.library.register_fake("selfocus::lane_distortion")
def _lane_distortion_fake(ref, pert, ys, width=30.0, penalty=1.0, min_iou=0.5):
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
