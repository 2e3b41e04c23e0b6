"""What every zoo model shares: head declarations, the input geometry, and the decode interface.

A model's ``forward`` returns a dict of raw head tensors (logits included); its ``heads`` declare which
outputs are confidences and which semantics (and which confidence masks which semantic output); its
``decode`` turns outputs into a LaneSet on the frame's rows. Decoding is a separate step, as in
pytorch-auto-drive, so quantized and FP outputs go through the same post-processing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..lanes.frames import ModelInput
from ..lanes.frames import get_frame
from ..lanes.laneset import LaneSet, resample_points


@dataclass(frozen=True)
class HeadSpec:
    """One prediction head: ``role`` is "confidence" or "semantic"; a semantic head names the confidence
    head whose FP probability masks it (``mask_from``); ``conf_fn`` says how a confidence output becomes a
    probability ("sigmoid" or "softmax1", the foreground column of a 2-class softmax)."""

    name: str
    output_key: str
    role: str
    mask_from: Optional[str] = None
    conf_fn: Optional[str] = None

    def __post_init__(self):
        if self.role not in ("confidence", "semantic"):
            raise ValueError(f"HeadSpec {self.name}: role must be 'confidence' or 'semantic', got {self.role!r}")
        if self.role == "confidence" and self.conf_fn not in ("sigmoid", "softmax1"):
            raise ValueError(f"HeadSpec {self.name}: a confidence head needs conf_fn 'sigmoid' or 'softmax1'")
        if self.role == "semantic" and self.mask_from is None:
            raise ValueError(f"HeadSpec {self.name}: a semantic head needs mask_from")


def softmax_foreground(logits: torch.Tensor) -> torch.Tensor:
    """The foreground column of a 2-class softmax, as sigmoid(l1 - l0): the same function, one elementwise
    kernel instead of a softmax over a dimension of size 2 (ATen's slowest case). The C++ decoders compute
    it with the same expression and kernels."""
    return torch.sigmoid(logits[..., 1] - logits[..., 0])


def probability(spec: HeadSpec, output: torch.Tensor) -> torch.Tensor:
    if spec.conf_fn == "sigmoid":
        return torch.sigmoid(output)
    if spec.conf_fn == "softmax1":
        return softmax_foreground(output)
    raise ValueError(f"head {spec.name} is not a confidence head")


# The input every zoo model sees: the CULane frame below row 270, resized to 400x160.
DEFAULT_INPUT = ModelInput(get_frame("culane"), (400, 160), 270.0)


class LaneModel(nn.Module):
    """Base class of the zoo models."""

    family: str = ""
    heads: List[HeadSpec] = []

    def __init__(self, model_input: ModelInput = DEFAULT_INPUT):
        super().__init__()
        self.model_input = model_input

    def head(self, name: str) -> HeadSpec:
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(f"{type(self).__name__} has no head {name!r}; heads: {[h.name for h in self.heads]}")

    def confidence_mask(self, semantic: str, outputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The FP probability that masks a semantic head, broadcastable to that head's output."""
        spec = self.head(semantic)
        conf = self.head(spec.mask_from)
        p = probability(conf, outputs[conf.output_key])
        target = outputs[spec.output_key]
        while p.dim() < target.dim():
            p = p.unsqueeze(-1)
        return p

    def decode(self, outputs: Dict[str, torch.Tensor], **kw) -> LaneSet:
        raise NotImplementedError

    def decode_reference(self, outputs: Dict[str, torch.Tensor], **kw) -> LaneSet:
        return self.decode(outputs, **kw)

    # helpers shared by the decoders ---------------------------------------------------------------------
    def laneset_from_tensors(self, xs: torch.Tensor, scores: torch.Tensor):
        """A LaneSet from a C++ decoder's [B, L, R] output; with a Monte-Carlo dimension, the raw
        (xs [K, B, L, R], scores [K, B, L]) pair is returned instead."""
        ys = torch.from_numpy(self.model_input.frame.ys)
        if xs.dim() == 4:
            return xs, scores
        return LaneSet(ys, xs, scores)

    def points_to_laneset(self, images: List[List[np.ndarray]], scores: Optional[List[List[float]]] = None,
                          max_lanes: int = 8, in_frame: bool = False) -> LaneSet:
        """Per image, lanes as (N, 2) points in model-input pixels (frame pixels with ``in_frame``) -> LaneSet
        on the frame's rows."""
        frame = self.model_input.frame
        ys = frame.ys
        out = LaneSet.empty(len(images), max_lanes, ys)
        for b, lanes in enumerate(images):
            order = np.argsort(-np.asarray(scores[b], np.float64), kind="stable") if scores else range(len(lanes))
            k = 0
            for i in order:
                if k >= max_lanes:
                    continue
                x, y = ((lanes[i][:, 0], lanes[i][:, 1]) if in_frame
                        else self.model_input.to_frame(lanes[i][:, 0], lanes[i][:, 1]))
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


class WrappedLaneModel(LaneModel):
    """A user's ``nn.Module`` that returns a dict of head tensors, declared with its ``HeadSpec``s and a
    ``decode(outputs) -> LaneSet`` function, so that quantization, reconstruction and Selective Focus treat it
    like a zoo model. ``head_layers``: names (inside ``module``) of the heads' output layers, kept at 8 bits.
    A decoder that cannot take a leading Monte-Carlo dimension is called once per noisy copy when curves are
    built (``supports_monte_carlo=False``)."""

    def __init__(self, module: nn.Module, heads: List[HeadSpec], decode: Callable[..., LaneSet],
                 model_input: ModelInput = DEFAULT_INPUT, head_layers: Optional[List[str]] = None,
                 family: str = "custom", supports_monte_carlo: bool = False):
        super().__init__(model_input)
        names = [h.name for h in heads]
        if not heads or len(set(names)) != len(names):
            raise ValueError(f"WrappedLaneModel: heads must be non-empty with unique names, got {names}")
        roles = {h.name: h.role for h in heads}
        for h in heads:
            if h.role == "semantic" and roles.get(h.mask_from) != "confidence":
                raise ValueError(f"WrappedLaneModel: head {h.name!r} is masked by {h.mask_from!r}, which is not a "
                                 "confidence head of this model")
        if not callable(decode):
            raise TypeError("WrappedLaneModel: decode must be callable (outputs dict -> LaneSet)")
        self.module, self.heads, self._decode = module, list(heads), decode
        self.family, self.supports_monte_carlo = family, supports_monte_carlo
        if head_layers:
            self.head_layers = [f"module.{n}" for n in head_layers]

    def forward(self, x) -> Dict[str, torch.Tensor]:
        out = self.module(x)
        if not isinstance(out, dict):
            raise TypeError(f"WrappedLaneModel: the module must return a dict of head tensors, got {type(out).__name__}")
        missing = [h.output_key for h in self.heads if h.output_key not in out]
        if missing:
            raise KeyError(f"WrappedLaneModel: the module's outputs lack {missing}")
        return out

    def decode(self, outputs: Dict[str, torch.Tensor], **kw):
        return self._decode(outputs, **kw)
