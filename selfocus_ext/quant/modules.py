"""Quantized layers: float weights fake-quantized per output channel, inputs fake-quantized per tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .quantizers import ActQuantizer, WeightQuantizer


class QuantLayer(nn.Module):
    """Shared by the quantized layer types: the float weight and bias, a weight and an input quantizer."""

    def __init__(self, layer: nn.Module, w_bits: int, a_bits: int, w_observer: str, a_observer: str):
        super().__init__()
        self.weight = nn.Parameter(layer.weight.detach().clone())
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone())
        self.weight_quantizer = WeightQuantizer(w_bits, w_observer)
        self.input_quantizer = ActQuantizer(a_bits, a_observer)
        self.quantize_weight = True

    def qweight(self) -> torch.Tensor:
        return self.weight_quantizer(self.weight) if self.quantize_weight else self.weight


class QuantConv2d(QuantLayer):
    def __init__(self, conv: nn.Conv2d, *args):
        super().__init__(conv, *args)
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        if conv.padding_mode != "zeros":
            raise ValueError(f"QuantConv2d: padding_mode {conv.padding_mode!r} is not supported")

    def forward(self, x):
        return F.conv2d(self.input_quantizer(x), self.qweight(), self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class QuantConv1d(QuantLayer):
    def __init__(self, conv: nn.Conv1d, *args):
        super().__init__(conv, *args)
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups

    def forward(self, x):
        return F.conv1d(self.input_quantizer(x), self.qweight(), self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class QuantLinear(QuantLayer):
    def forward(self, x):
        return F.linear(self.input_quantizer(x), self.qweight(), self.bias)


QUANT_TYPES = {nn.Conv2d: QuantConv2d, nn.Conv1d: QuantConv1d, nn.Linear: QuantLinear}
