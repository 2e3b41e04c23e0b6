"""Layers several published detectors share, with the module names of their checkpoints: mmcv's
convolution module (``conv``, then ``bn``), the FPN's top-down sum, and the position-attention encoder that
CondLaneNet and GANet put on the last ResNet stage (``trans_head.attn_layers``) before their lateral
convolutions (``lateral_convs``)."""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import MatMul
from ..lstr import sine_position


class ConvModule(nn.Module):
    """A convolution, optionally batch norm and ReLU after it. As mmcv builds it, the convolution has a bias
    exactly when there is no norm."""

    def __init__(self, cin: int, cout: int, k, stride=1, padding=0, norm: bool = True, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.conv(x)
        if hasattr(self, "bn"):
            x = self.bn(x)
        return F.relu(x) if self.act else x


def stride_grid(size: int, halvings: int) -> int:
    """A ResNet feature map's extent after ``halvings`` stride-2 steps (each rounds up)."""
    for _ in range(halvings):
        size = math.ceil(size / 2)
    return size


class PositionAttention(nn.Module):
    """A 3x3 convolution, a fixed sine position code added, single-head attention over all positions with
    1x1 query/key/value projections (query and key reduced ``ratio`` times), the result scaled by a learned
    ``gamma`` and added back, a final 3x3 convolution."""

    def __init__(self, cin: int, cout: int, ratio: int = 4, stride: int = 1):
        super().__init__()
        self.pre_conv = ConvModule(cin, cout, 3, stride, 1)
        self.query_conv = nn.Conv2d(cout, cout // ratio, 1)
        self.key_conv = nn.Conv2d(cout, cout // ratio, 1)
        self.value_conv = nn.Conv2d(cout, cout, 1)
        self.final_conv = ConvModule(cout, cout, 3, 1, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scores, self.mix = MatMul("bmm"), MatMul("bmm")

    def forward(self, x, pos):
        x = self.pre_conv(x) + pos
        B, _, H, W = x.shape
        query = self.query_conv(x).flatten(2).transpose(1, 2)  # [B, HW, C/r]
        attention = torch.softmax(self.scores(query, self.key_conv(x).flatten(2)), dim=-1)
        out = self.mix(self.value_conv(x).flatten(2), attention.transpose(1, 2)).view(B, -1, H, W)
        return self.final_conv(self.gamma * out + x)


class AttentionEncoder(nn.Module):
    """Position-attention layers in sequence on the last stage's features (``grid``: their (h, w)); each
    layer's position code (unnormalised sine, built for that grid) is a constant of the model."""

    def __init__(self, grid, in_dims: Sequence[int] = (512, 64), out_dims: Sequence[int] = (64, 64),
                 ratios: Sequence[int] = (4, 4)):
        super().__init__()
        self.attn_layers = nn.ModuleList(PositionAttention(i, o, r) for i, o, r in zip(in_dims, out_dims, ratios))
        for k, dim in enumerate(out_dims):
            self.register_buffer(f"pos{k}", sine_position(*grid, dim, normalize=False)[None], persistent=False)

    def forward(self, x):
        for k, layer in enumerate(self.attn_layers):
            x = layer(x, getattr(self, f"pos{k}"))
        return x


def top_down_sum(laterals: List[torch.Tensor]) -> List[torch.Tensor]:
    """An FPN's top-down path: from the coarsest level down, each level plus the coarser one resized to it
    (nearest). ``laterals`` fine to coarse; returns a new list."""
    lat = list(laterals)
    for i in range(len(lat) - 1, 0, -1):
        lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
    return lat


class AttendedLaterals(nn.Module):
    """CondLaneNet's and GANet's neck up to its outputs: position attention on layer 4, lateral 1x1
    convolutions (bias, no norm) of (layer 2, layer 3, attended layer 4) to 64 channels, the top-down sum.
    Subclasses add their output convolutions."""

    def __init__(self, grid32, in_channels: Sequence[int] = (128, 256, 64), out: int = 64):
        super().__init__()
        self.trans_head = AttentionEncoder(grid32)
        self.lateral_convs = nn.ModuleList(ConvModule(c, out, 1, norm=False, act=False) for c in in_channels)

    def summed_laterals(self, l2, l3, l4) -> List[torch.Tensor]:
        return top_down_sum([conv(f) for conv, f in zip(self.lateral_convs, (l2, l3, self.trans_head(l4)))])
