"""A small ResNet-style backbone (about 0.6 M parameters) with a top-down neck to stride 8."""
from __future__ import annotations

from typing import Dict

from torch import nn
import torch.nn.functional as F


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


class SmallResNet(nn.Module):
    """Stride 2 stem, then stages at strides 4, 8, 16 (channels 32, 64, 96)."""

    def __init__(self, widths=(24, 32, 64, 96)):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = conv_bn(3, w0, 3, 2)
        self.layer1 = BasicBlock(w0, w1, 2)
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, 2), BasicBlock(w2, w2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, 2), BasicBlock(w3, w3))
        self.out_channels = {"s8": w2, "s16": w3}

    def forward(self, x) -> Dict[str, "torch.Tensor"]:
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
