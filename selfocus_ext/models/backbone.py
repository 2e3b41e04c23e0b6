"""The zoo's ResNet-style backbone with a top-down neck to stride 8, in two sizes.

Small (about 0.46 M parameters) has stages of 1, 2, 2 basic blocks; Mid deepens them the way ResNet-34 deepens
ResNet-18 (stage depths 2,2,2,2 -> 3,4,6,3, i.e. x1.5, x2, x3 on the first three stages): 2, 4, 6.
"""
from __future__ import annotations

from typing import Dict, Sequence

from torch import Tensor, nn
import torch.nn.functional as F

SMALL_WIDTHS = (24, 32, 64, 96)  # stem, then the stages at strides 4, 8, 16
SMALL_DEPTHS = (1, 2, 2)
MID_DEPTHS = (2, 4, 6)


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1, relu=False)
        self.down = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


def check_size(widths: Sequence[int], depths: Sequence[int], stages: int) -> None:
    """Rejects backbone sizes the builders cannot use, naming the argument."""
    if len(widths) != stages + 1 or any(int(w) < 1 for w in widths):
        raise ValueError(f"widths: expected {stages + 1} positive channel counts (stem and {stages} stages), "
                         f"got {tuple(widths)}")
    if len(depths) != stages or any(int(d) < 1 for d in depths):
        raise ValueError(f"depths: expected {stages} positive block counts, got {tuple(depths)}")


def stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Module:
    """``blocks`` basic blocks, the first changing stride and width. A single block stays a bare block so that
    the Small models' parameter names are those of their shipped weights."""
    first = BasicBlock(cin, cout, stride)
    if blocks == 1:
        return first
    return nn.Sequential(first, *(BasicBlock(cout, cout) for _ in range(blocks - 1)))


class SmallResNet(nn.Module):
    """Stride 2 stem, then stages at strides 4, 8, 16 with ``depths`` blocks of ``widths[1:]`` channels."""

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS):
        super().__init__()
        check_size(widths, depths, 3)
        w0, w1, w2, w3 = widths
        self.stem = conv_bn(3, w0, 3, 2)
        self.layer1 = stage(w0, w1, depths[0], 2)
        self.layer2 = stage(w1, w2, depths[1], 2)
        self.layer3 = stage(w2, w3, depths[2], 2)
        self.out_channels = {"s8": w2, "s16": w3}

    def forward(self, x) -> Dict[str, Tensor]:
        x = self.layer1(self.stem(x))
        s8 = self.layer2(x)
        s16 = self.layer3(s8)
        return {"s8": s8, "s16": s16}


class TopDownNeck(nn.Module):
    """Stride-16 features upsampled onto stride 8 and fused: one map of ``channels`` at stride 8."""

    def __init__(self, c8: int, c16: int, channels: int = 64):
        super().__init__()
        self.lat8 = conv_bn(c8, channels, 1)
        self.lat16 = conv_bn(c16, channels, 1)
        self.fuse = conv_bn(channels, channels, 3)

    def forward(self, feats):
        top = F.interpolate(self.lat16(feats["s16"]), size=feats["s8"].shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(self.lat8(feats["s8"]) + top)
