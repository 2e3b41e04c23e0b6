"""What every zoo model shares: head declarations, the input geometry, and the decode interface.

A model's ``forward`` returns a dict of raw head tensors (logits included); its ``heads`` declare which
outputs are confidences and which semantics (and which confidence masks which semantic output); its
``decoder_name`` names the decoder (``selfocus_ext.decoders``) that turns outputs into a LaneSet on the
frame's rows; ``decode`` only delegates to it, so quantized and FP outputs go through the same
post-processing and a decoder can be swapped or used without its model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from ..decoders import Decoder, build_decoder, softmax_foreground
from ..lanes.frames import ModelInput, get_frame
from ..lanes.laneset import LaneSet


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

    # ---- decoding: delegated to the family's decoder -----------------------------------------------------
    decoder_name: str = ""

    def decoder_inputs(self) -> dict:
        """What this model's decoder needs besides the input geometry (e.g. LaneATT's anchors)."""
        return {}

    def lane_decoder(self, model_input: Optional[ModelInput] = None) -> Decoder:
        """This model's decoder, bound to its input geometry (or to ``model_input``)."""
        if not self.decoder_name:
            raise NotImplementedError(f"{type(self).__name__} names no decoder (decoder_name)")
        return build_decoder(self.decoder_name, model_input or self.model_input, **self.decoder_inputs())

    def decode(self, outputs: Dict[str, torch.Tensor], backend: str = "cpp", **params):
        """LaneSet of the outputs (the batched native decoder; ``backend="python"`` runs its reference). Any
        head may carry a leading Monte-Carlo dimension K: the result is then the (xs [K, B, L, R],
        scores [K, B, L]) pair."""
        return self.lane_decoder()(outputs, backend=backend, **params)

    def decode_reference(self, outputs: Dict[str, torch.Tensor], **params) -> LaneSet:
        return self.lane_decoder().reference(outputs, **params)


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

    def decode_reference(self, outputs: Dict[str, torch.Tensor], **kw):
        return self._decode(outputs, **kw)
