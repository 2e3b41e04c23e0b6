"""BezierLaneNet as pytorch-auto-drive (its official implementation) publishes it for CULane at 800x288:
ResNet-18/34 to layer3 (stride 16), two dilated bottlenecks (dilations 4 and 8), the feature flip fusion
(the flipped map through a modulated deformable convolution guided by the unflipped one: the project's
DCNv2 op), average pooling over the rows to 50 columns, two 1-D convolutions and the 1x1 heads.

Heads: ``logits`` [B, 50] (confidence, sigmoid) and ``curves`` [B, 50, 4, 2] (a cubic Bezier curve's
control points in normalised input coordinates; semantic). The auxiliary segmentation branch is used in
training only (the converter drops it). Post-processing as published: probability above 0.95, a local
maximum in a 1-D window of 9, at most 4 lanes; each curve sampled at 50 evenly spaced parameters and scaled
to the original image.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..base import HeadSpec
from .base import PublishedLaneModel
from ...layers.deform import ModulatedDeformConv2d
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout
from .resnet import DEPTHS, ResNetTrunk
from .segmentation import CULANE_INPUT

LAYOUT = CheckpointLayout("pytorch-auto-drive", top_keys=("model",), ignore=(r"^segmentation_head\.",))


def conv_bn(cin, cout, k=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation), nn.BatchNorm2d(cout))


class DilatedBottleneck(nn.Module):
    """1x1 down, dilated 3x3, 1x1 up, each with batch norm and ReLU, plus the identity (YOLOF's encoder)."""

    def __init__(self, channels: int, mid: int, dilation: int):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = conv_bn(channels, mid), conv_bn(mid, mid, 3, dilation), conv_bn(mid, channels)

    def forward(self, x):
        return x + F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))


class FeatureFlipFusion(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.proj1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.proj2_conv = ModulatedDeformConv2d(channels, channels, 3, padding=1, guide_channels=channels)
        self.proj2_norm = nn.BatchNorm2d(channels)

    def forward(self, x):
        feature = self.proj1(x)
        return F.relu(feature + self.proj2_norm(self.proj2_conv(x.flip(-1), feature)))


class RowProjection(nn.Module):
    def __init__(self, channels: int, layers: int = 2):
        super().__init__()
        self.hidden_layers = nn.ModuleList(nn.Conv1d(channels, channels, 3, padding=1) for _ in range(layers))
        self.hidden_norms = nn.ModuleList(nn.BatchNorm1d(channels) for _ in range(layers))

    def forward(self, x):
        for conv, norm in zip(self.hidden_layers, self.hidden_norms):
            x = F.relu(norm(conv(x)))
        return x


class BezierPublished(PublishedLaneModel):
    # pytorch-auto-drive: Python floats of the sampled curve points
    lines_format = ("pad", {"x_type": "float", "y_type": "float"})
    family = "curve"
    head_layers = ["proj_classification", "proj_regression"]
    heads = [HeadSpec("logits", "logits", "confidence", conf_fn="sigmoid"),
             HeadSpec("curves", "curves", "semantic", mask_from="logits")]

    def __init__(self, backbone: str = "resnet18", model_input=CULANE_INPUT):
        super().__init__(model_input)
        self.backbone = ResNetTrunk(DEPTHS[backbone], stages=3, returns=("layer3",))
        self.dilated_blocks = nn.Sequential(DilatedBottleneck(256, 64, 4), DilatedBottleneck(256, 64, 8))
        self.simple_flip_2d = FeatureFlipFusion(256)
        self.rows = (model_input.size[1] - 1) // 16 + 1
        self.regression_head = RowProjection(256)
        self.proj_classification = nn.Conv1d(256, 1, 1)
        self.proj_regression = nn.Conv1d(256, 8, 1)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.simple_flip_2d(self.dilated_blocks(self.backbone(x)["layer3"]))
        f = self.regression_head(F.avg_pool2d(f, (self.rows, 1), stride=1)[:, :, 0, :])
        curves = self.proj_regression(f)
        return {"logits": self.proj_classification(f).squeeze(1),
                "curves": curves.permute(0, 2, 1).reshape(curves.shape[0], -1, 4, 2)}

    # decoding: the batched native decoder (csrc/core/decoders/published/) with the implementation's
    # post-processing as its reference (selfocus_ext/decoders/pad_curves.py)
    decoder_name = "pad-bezier"
    supports_monte_carlo = True


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"bezier-{_bb.replace('resnet', 'r')}", "bezier", "pytorch-auto-drive", _bb, _size, "culane",
                           (800, 288), 0.0, (LAYOUT,), lambda bb=_bb, **kw: BezierPublished(bb, **kw)))
