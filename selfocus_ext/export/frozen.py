"""The quantized model as a deployment sees it: every quantizer frozen to constants.

Tuning leaves Python-side state in the quantizers (signedness in a buffer, learnable steps, QDrop's keep
probability, AdaRound's rounding variables). An exporter traces the forward pass, so it needs plain
constants: :func:`freeze` returns a copy whose layers quantize their input with a fixed step, bits and
signedness read once, and whose weights already sit on their integer grid (so the integers stored in the
exported file are exactly the ones the PyTorch model computes with, AdaRound's hard-rounded ones included).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Dict

import torch
from torch import nn

from ..quant import quant_layers
from ..quant.modules import QuantConvTranspose2d, QuantLayer, QuantMatMul


class ExportError(ValueError):
    """A model that cannot be exported; the message names the layer and the reason."""


@dataclass(frozen=True)
class LayerQuant:
    """One quantized layer's constants: weight bits and per-channel scale, input bits, step and signedness
    (``act_bits`` 0 when the input is not quantized)."""

    weight_bits: int
    act_bits: int
    act_signed: bool
    act_step: float


class FrozenActQuant(nn.Module):
    """Per-tensor activation fake quantization with a constant step (no drop, no learning)."""

    def __init__(self, step: torch.Tensor, bits: int, signed: bool):
        super().__init__()
        self.register_buffer("step", step.detach().reshape(()).to(torch.float32).clone())
        self.bits, self.signed = int(bits), bool(signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.selfocus.act_quant(x, self.step, self.bits, self.signed, 1.0, 0, 1.0)


class FrozenWeightQuant(nn.Module):
    """Per-output-channel symmetric weight fake quantization with constant scales."""

    def __init__(self, scale: torch.Tensor, bits: int):
        super().__init__()
        self.register_buffer("scale", scale.detach().to(torch.float32).clone())
        self.bits = int(bits)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return torch.ops.selfocus.fake_quant(w, self.scale, self.bits, True, 0)


def _check_layer(name: str, layer: QuantLayer) -> None:
    wq, aq = layer.weight_quantizer, layer.input_quantizer
    if not wq.calibrated:
        raise ExportError(f"layer {name!r}: its weight scales were never calibrated (run calibrate() first)")
    if wq.v is not None or wq.mode != "rtn":
        raise ExportError(f"layer {name!r}: its AdaRound rounding is still {wq.mode!r}; finish tuning (the "
                          "reconstruction writes the hard-rounded weights back) before exporting")
    if not layer.quantize_weight:
        raise ExportError(f"layer {name!r}: weight quantization is switched off (a calibration pass did not end)")
    if aq.enabled and not aq.calibrated:
        raise ExportError(f"layer {name!r}: its input step was never calibrated (run calibrate() first)")
    if aq.enabled and aq.offset is not None:
        raise ExportError(f"layer {name!r}: its input grid has a learned LSQ+ offset, which QuantizeLinear's "
                          "integer zero point cannot hold in general; export calibrated or reconstructed models")
    if aq.enabled and aq.phase != "quantize":
        raise ExportError(f"layer {name!r}: its input quantizer is in the {aq.phase!r} calibration phase")
    if layer.weight.device.type != "cpu":
        raise ExportError(f"layer {name!r}: on {layer.weight.device}; export from a CPU model (model.cpu())")
    finite = torch.isfinite(layer.weight).all() and torch.isfinite(wq.scale).all() and (wq.scale > 0).all()
    if not finite or (aq.enabled and not (torch.isfinite(aq.step) and aq.step > 0)):
        raise ExportError(f"layer {name!r}: a scale, step or weight is not finite and positive")


INT32_MAX = 2**31 - 1


def int32_bias(bias: torch.Tensor, step: torch.Tensor, weight_scale: torch.Tensor) -> torch.Tensor:
    """``bias`` on the accumulator grid of an integer runtime: round(bias / (step * weight_scale)) as int32,
    dequantized as a DequantizeLinear computes it (float32(int) * float32 scale). Unchanged where the
    integers would not fit in int32."""
    scale = (step.detach().reshape(()).float() * weight_scale.detach().reshape(-1).float())
    ints = torch.round(bias.detach().double() / scale.double())
    if ints.numel() and float(ints.abs().max()) > INT32_MAX:
        return bias.detach().clone()
    return ints.float() * scale


@torch.no_grad()
def freeze(qmodel: nn.Module, bias: str = "int32") -> "tuple[nn.Module, Dict[str, LayerQuant]]":
    """A CPU copy of ``qmodel`` with constant quantizers and on-grid weights, and each layer's constants.

    ``bias="int32"`` also puts the bias of every layer with a quantized input on the int32 accumulator grid
    (:func:`int32_bias`), as integer runtimes hold it: the copy then computes what the exported model
    computes. The change is below 1e-5 of the bias, but at 4-bit activations it moves some rounding
    decisions, so it is part of the deployable model rather than left to the runtime (docs/export.md)."""
    if bias not in ("int32", "float"):
        raise ExportError(f"bias: expected 'int32' or 'float', got {bias!r}")
    layers = quant_layers(qmodel)
    if not layers:
        raise ExportError("the model has no quantized layer (expected the output of quantize_model + calibrate, "
                          "or a quantized.pt of the tune command)")
    for name, layer in layers.items():
        _check_layer(name, layer)
    frozen = copy.deepcopy(qmodel).cpu().eval()
    spec: Dict[str, LayerQuant] = {}
    for name, layer in quant_layers(frozen).items():
        wq, aq = layer.weight_quantizer, layer.input_quantizer
        layer.weight.data = wq(layer.weight)  # on the grid: the stored integers are exactly these
        layer.weight_quantizer = FrozenWeightQuant(wq.scale, wq.bits)
        if aq.enabled:
            # a transposed convolution's weight reaches ONNX through a Transpose, which the int32 bias pass
            # does not follow: its bias stays float there, so here too
            if bias == "int32" and layer.bias is not None and not isinstance(layer, QuantConvTranspose2d):
                layer.bias.data = int32_bias(layer.bias, aq.step, wq.scale)
            layer.input_quantizer = FrozenActQuant(aq.step, aq.bits, aq.signed)
            spec[name] = LayerQuant(wq.bits, aq.bits, aq.signed, float(aq.step))
        else:
            layer.input_quantizer = nn.Identity()
            spec[name] = LayerQuant(wq.bits, 0, False, 0.0)
    for name, m in frozen.named_modules():
        if isinstance(m, QuantMatMul):
            for attr in ("a_quantizer", "b_quantizer"):
                q = getattr(m, attr)
                if not q.calibrated or not (torch.isfinite(q.step) and q.step > 0):
                    raise ExportError(f"activation product {name!r}: its {attr} step was never calibrated")
                setattr(m, attr, FrozenActQuant(q.step, q.bits, q.signed))
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen, spec
