"""Modulated deformable convolution (DCNv2) as a layer: the offsets and the mask come from a plain
convolution of the input (or of the input beside a guide feature, as BezierLaneNet's feature flip fusion
uses it), the sampling is the project's op ``selfocus::deform_conv2d``. Parameter names follow mmcv's
``ModulatedDeformConv2d`` with its ``conv_offset``, so published checkpoints load as they are."""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import nn

from ..ops.deform import as_pair, deform_conv2d


def offsets_and_mask(raw: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The offset convolution's output split as mmcv does: two thirds offsets, one third mask logits."""
    o1, o2, mask = torch.chunk(raw, 3, dim=1)
    return torch.cat((o1, o2), dim=1), torch.sigmoid(mask)


class ModulatedDeformConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=0, dilation=1,
                 groups: int = 1, offset_groups: int = 1, bias: bool = True, guide_channels: int = 0):
        super().__init__()
        kh, kw = as_pair(kernel_size, "kernel_size")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding, self.dilation = as_pair(stride, "stride"), as_pair(padding, "padding"), as_pair(dilation, "dilation")
        self.groups, self.offset_groups = groups, offset_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.conv_offset = nn.Conv2d(in_channels + guide_channels, offset_groups * 3 * kh * kw, (kh, kw),
                                     self.stride, self.padding, self.dilation)
        nn.init.zeros_(self.conv_offset.weight)  # starts as a plain convolution
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x, guide=None):
        offset, mask = offsets_and_mask(self.conv_offset(x if guide is None else torch.cat([x, guide], 1)))
        return deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride, self.padding, self.dilation,
                             self.groups, self.offset_groups)


class DeformConv1d(nn.Module):
    """A 1 x k deformable convolution without modulation or bias (GANet's ``DeformConv1D``): the offsets
    ([B, 2k, H, W], (dy, dx) per tap) are an input, computed by the caller; the sampling is
    ``selfocus::deform_conv2d`` with a unit mask. Parameter name as published: ``weight`` [out, in, 1, k]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation = (1, stride), (0, padding), (1, 1)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, kernel_size))
        self.bias = None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x, offset):
        return deform_conv1d(x, offset, self.weight, self.stride, self.padding)


def deform_conv1d(x, offset, weight, stride, padding, bias=None):
    mask = offset.new_ones(offset.shape[0], offset.shape[1] // 2, *offset.shape[2:])
    return deform_conv2d(x, offset, mask, weight, bias, stride, padding, (1, 1), 1, 1)
