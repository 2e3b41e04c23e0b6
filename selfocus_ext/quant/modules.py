"""Quantized layers: float weights fake-quantized per output channel, inputs fake-quantized per tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.deform import DeformConv1d, ModulatedDeformConv2d, deform_conv1d, offsets_and_mask
from ..layers.matmul import MatMul
from ..ops.deform import deform_conv2d
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
        # a BatchNorm folded into this layer: the running statistics of its input (the layer's pre-fold
        # output) and its affine map; not saved with the model (quantize_model folds again on load)
        folded = getattr(layer, "folded_bn", None)
        self.has_folded_bn = folded is not None
        for key in ("mean", "std", "scale", "shift"):
            self.register_buffer(f"bn_{key}", folded[key] if folded is not None else None, persistent=False)

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


class QuantConvTranspose2d(QuantLayer):
    """A transposed convolution (one group) with its weight held output channel first, [out, in, kh, kw], so
    that it is quantized per output channel like every other layer; the forward transposes it back."""

    def __init__(self, conv: nn.ConvTranspose2d, *args):
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("QuantConvTranspose2d: only one group and zero padding are supported, got groups="
                             f"{conv.groups}, padding_mode={conv.padding_mode!r}")
        super().__init__(conv, *args)
        self.weight = nn.Parameter(conv.weight.detach().transpose(0, 1).contiguous())
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.output_padding = conv.output_padding

    def forward(self, x):
        return F.conv_transpose2d(self.input_quantizer(x), self.qweight().transpose(0, 1), self.bias, self.stride,
                                  self.padding, self.output_padding, 1, self.dilation)


class QuantLinear(QuantLayer):
    def forward(self, x):
        return F.linear(self.input_quantizer(x), self.qweight(), self.bias)


class QuantModulatedDeformConv2d(QuantLayer):
    """A modulated deformable convolution with quantized weights and a quantized input; its offset/mask
    convolution is a layer of its own (quantized in turn by ``quantize_model``)."""

    def __init__(self, layer: ModulatedDeformConv2d, *args):
        super().__init__(layer, *args)
        self.stride, self.padding, self.dilation = layer.stride, layer.padding, layer.dilation
        self.groups, self.offset_groups = layer.groups, layer.offset_groups
        self.conv_offset = layer.conv_offset

    def forward(self, x, guide=None):
        offset, mask = offsets_and_mask(self.conv_offset(x if guide is None else torch.cat([x, guide], 1)))
        return deform_conv2d(self.input_quantizer(x), offset, mask, self.qweight(), self.bias, self.stride,
                             self.padding, self.dilation, self.groups, self.offset_groups)


class QuantDeformConv1d(QuantLayer):
    """A 1 x k deformable convolution with quantized weights and input; its offsets come from the caller's
    (quantized) layers."""

    def __init__(self, layer: DeformConv1d, *args):
        super().__init__(layer, *args)
        self.stride, self.padding = layer.stride, layer.padding

    def forward(self, x, offset):
        return deform_conv1d(self.input_quantizer(x), offset, self.qweight(), self.stride, self.padding, self.bias)


class QuantMatMul(nn.Module):
    """A product of two activations with both operands fake-quantized per tensor (``QuantConfig.matmul_bits``).
    Calibrated like the layers' inputs; reconstruction does not learn its steps."""

    def __init__(self, mm: MatMul, bits: int, observer: str):
        super().__init__()
        self.op = mm.op
        self.a_quantizer = ActQuantizer(bits, observer)
        self.b_quantizer = ActQuantizer(bits, observer)

    def quantizers(self):
        return [self.a_quantizer, self.b_quantizer]

    def forward(self, a, b):
        a, b = self.a_quantizer(a), self.b_quantizer(b)
        return torch.bmm(a, b) if self.op == "bmm" else a @ b


QUANT_TYPES = {nn.Conv2d: QuantConv2d, nn.Conv1d: QuantConv1d, nn.Linear: QuantLinear,
               ModulatedDeformConv2d: QuantModulatedDeformConv2d, DeformConv1d: QuantDeformConv1d,
               nn.ConvTranspose2d: QuantConvTranspose2d}
