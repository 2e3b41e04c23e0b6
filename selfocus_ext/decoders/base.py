"""What every decoder shares: the frame geometry its native op needs, the two backends, and the LaneSet
builders.

A decoder turns a model's raw head tensors into a LaneSet on the frame's rows. ``backend="cpp"`` runs the
batched native op (``torch.ops.selfocus.decode_*``, CPU or CUDA, with an optional leading Monte-Carlo
dimension); ``backend="python"`` runs the plain-Python reference beside it, the readable specification
the op is tested against.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch

from ..lanes.frames import ModelInput
from ..lanes.laneset import LaneSet, resample_points
from .. import ops  # noqa: F401  (registers the native ops and their fake kernels)

# LaneSet capacity the native ops fill (lanes per image); the families' own lane limits are smaller.
MAX_LANES = 8


class Decoder:
    """One family's post-processing, bound to a model's input geometry (``model_input``). Subclasses
    implement ``native`` (the C++/CUDA op, called with keyword arguments) and ``reference`` (plain Python)
    with the same keyword parameters and defaults."""

    name: str = ""
    # whether ``native`` accepts a leading Monte-Carlo dimension on any head
    supports_monte_carlo: bool = True

    def __init__(self, model_input: ModelInput):
        if not isinstance(model_input, ModelInput):
            raise TypeError(f"{type(self).__name__}: model_input must be a ModelInput, "
                            f"got {type(model_input).__name__}")
        self.model_input = model_input

    def __call__(self, outputs: Dict[str, torch.Tensor], backend: str = "cpp", **params):
        if backend == "cpp":
            return self.native(outputs, **params)
        if backend == "python":
            return self.reference(outputs, **params)
        raise ValueError(f"{type(self).__name__}: backend must be 'cpp' or 'python', got {backend!r}")

    def native(self, outputs: Dict[str, torch.Tensor], **params):
        raise NotImplementedError(f"{type(self).__name__} has no native op; use backend='python'")

    def reference(self, outputs: Dict[str, torch.Tensor], **params) -> LaneSet:
        raise NotImplementedError

    # ---- the native ops' shared arguments -----------------------------------------------------------
    def frame_args(self, input_size: bool = False) -> dict:
        """Keyword arguments every native op takes: the frame's rows and the input-to-frame mapping
        (``input_size``: also the input's width and height, for the ops that clip to the input)."""
        mi = self.model_input
        sx, sy = mi.scale
        args = dict(ys=torch.from_numpy(mi.frame.ys), sx=float(sx), sy=float(sy), crop_top=float(mi.crop_top),
                    frame_width=int(mi.frame.width), max_lanes=MAX_LANES)
        if input_size:
            args.update(input_width=int(mi.size[0]), input_height=int(mi.size[1]))
        return args

    def laneset_from_tensors(self, xs: torch.Tensor, scores: torch.Tensor):
        """A LaneSet from a native op's [B, L, R] output; with a Monte-Carlo dimension, the raw
        (xs [K, B, L, R], scores [K, B, L]) pair is returned instead."""
        if xs.dim() == 4:
            return xs, scores
        return LaneSet(torch.from_numpy(self.model_input.frame.ys), xs, scores)

    def points_to_laneset(self, images: List[List[np.ndarray]], scores: Optional[List[List[float]]] = None,
                          max_lanes: int = MAX_LANES, in_frame: bool = False) -> LaneSet:
        return points_to_laneset(self.model_input, images, scores, max_lanes, in_frame)


def points_to_laneset(model_input: ModelInput, images: List[List[np.ndarray]],
                      scores: Optional[List[List[float]]] = None, max_lanes: int = MAX_LANES,
                      in_frame: bool = False) -> LaneSet:
    """Per image, lanes as (N, 2) points in model-input pixels (frame pixels with ``in_frame``) -> LaneSet on
    the frame's rows, strongest first, at most ``max_lanes``."""
    frame = model_input.frame
    ys = frame.ys
    out = LaneSet.empty(len(images), max_lanes, ys)
    for b, lanes in enumerate(images):
        order = np.argsort(-np.asarray(scores[b], np.float64), kind="stable") if scores else range(len(lanes))
        k = 0
        for i in order:
            if k >= max_lanes:
                continue
            x, y = ((lanes[i][:, 0], lanes[i][:, 1]) if in_frame
                    else model_input.to_frame(lanes[i][:, 0], lanes[i][:, 1]))
            # a point whose frame position is not finite (a NaN or overflowing head value) is not a point
            finite = np.isfinite(x) & np.isfinite(y)
            if np.count_nonzero(finite) < 2:
                continue
            xs = resample_points(np.stack([x[finite], y[finite]], 1), ys)
            xs[(xs < 0) | (xs > frame.width - 1)] = np.nan
            if np.count_nonzero(~np.isnan(xs)) < 2:
                continue
            out.xs[b, k] = torch.from_numpy(xs)
            out.scores[b, k] = float(scores[b][i]) if scores else 1.0
            k += 1
    return out
