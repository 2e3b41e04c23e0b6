"""CondLaneNet as its official implementation (an mmdetection fork) publishes it for CULane: the small
(ResNet-18) and medium (ResNet-34) configurations. Input: the CULane image below row 270 resized to 800x320,
normalised with the implementation's per-channel statistics of BGR pixels; the converter reverses the first
convolution's input channels, so the project feeds RGB.

Architecture: position attention (two layers) on layer 4, an FPN over (layer 2, layer 3, attended layer 4)
to 64 channels; the proposal heatmap and the dynamic-kernel parameters at stride 16, a three-convolution mask
branch at stride 8. Each proposal cell's 134 parameters are two dynamic 1x1 convolutions (66 weights on
(x/w, y/w, 64 features) and a bias, minus 2.19, each): the location logits, whose per-row softmax gives the
lane's column, and the sub-column offset. A row-range MLP (two 1x1 Conv1d over the columns) says which rows
each lane covers.

Heads: ``hm`` [B, 1, h16, w16] proposal logits (confidence); ``params`` [B, 134, h16, w16] and ``features``
[B, 64, h8, w8] (semantic); ``range`` [B, h16*w16, h8, 2] row-range logits of every proposal cell
(confidence). The model runs the range MLP on every cell (a dense batched product, ~0.5 G multiply-adds at the
real size) so that it is an ordinary quantized layer; the dynamic convolutions of the kept proposals run in
decoding, as the implementation runs them.

Post-processing as published (CULane test settings): the ``condlane-published`` decoder
(selfocus_ext/decoders/published_keypoint.py), batched in C++ with the Monte-Carlo dimension.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ...decoders.published_keypoint import MASK_BIAS, dynamic_inputs
from ...layers import MatMul
from ...lanes.frames import ModelInput
from ...lanes.frames import get_frame
from ..base import HeadSpec
from .base import PublishedLaneModel
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout, flip_first_conv
from .layers import AttendedLaterals, ConvModule, stride_grid
from .resnet import DEPTHS, ResNetTrunk

# the implementation's normalisation of BGR pixels, given here per RGB channel on the 0-1 scale
BGR_MEAN, BGR_STD = (75.3, 76.6, 77.6), (50.5, 53.8, 54.3)
# (mmcv decoding with OpenCV, albumentations' Crop and Resize with INTER_LINEAR, mmcv's imnormalize)
MMDET_CULANE_INPUT = ModelInput(get_frame("culane"), (800, 320), 270.0, mean=tuple(m / 255 for m in BGR_MEAN[::-1]),
                                std=tuple(s / 255 for s in BGR_STD[::-1]), resize="cv2-linear", arithmetic="mmcv")
DIM = 64
DYNAMIC = DIM + 2 + 1  # one dynamic 1x1 conv: (x, y, features) weights and a bias


MMDET = "official (mmdetection fork)"
LAYOUT = CheckpointLayout(MMDET, top_keys=("state_dict",), strip_prefixes=("module.",),
                          ignore=(r"^neck\.fpn_convs\.2\.",),  # the stride-32 output no head reads
                          transform=flip_first_conv("backbone.conv1.weight"))


class TransConvFPN(AttendedLaterals):
    """The attended laterals' top-down sum through output 3x3 convolutions (bias, no norm); returns the
    stride-8 and stride-16 outputs (the heads' inputs)."""

    def __init__(self, grid32):
        super().__init__(grid32)
        self.fpn_convs = nn.ModuleList(ConvModule(DIM, DIM, 3, padding=1, norm=False, act=False) for _ in range(2))

    def forward(self, l2, l3, l4):
        lat = self.summed_laterals(l2, l3, l4)
        return self.fpn_convs[0](lat[0]), self.fpn_convs[1](lat[1])


class CenterHead(nn.Module):
    """CenterNet-style head: one 3x3 convolution with ReLU, a 1x1 output (``<name>.0``, ``<name>.2``)."""

    def __init__(self, heads: Dict[str, int], cin: int = DIM):
        super().__init__()
        self.names = list(heads)
        for name, cout in heads.items():
            self.add_module(name, nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.ReLU(inplace=True),
                                                nn.Conv2d(cin, cout, 1)))

    def forward(self, x):
        return {name: getattr(self, name)(x) for name in self.names}


class RangeMLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv1d(width, 64, 1), nn.Conv1d(64, 2, 1)])

    def forward(self, x):  # [N, columns, rows] -> [N, 2, rows]
        return self.layers[1](F.relu(self.layers[0](x)))


class CondLaneHead(nn.Module):
    def __init__(self, mask_width: int):
        super().__init__()
        self.mask_branch = nn.Sequential(*(ConvModule(DIM, DIM, 3, padding=1) for _ in range(3)))
        self.ctnet_head = CenterHead({"hm": 1, "params": 2 * DYNAMIC})
        self.mlp = RangeMLP(mask_width)


class CondLaneNetPublished(PublishedLaneModel):
    decoder_name = "condlane-published"
    supports_monte_carlo = True
    lines_format = ("two-decimals", {})
    max_lanes = 16  # the implementation writes every lane (files: all); the LaneSet, scored, holds 16
    family = "keypoint"
    head_layers = ["bbox_head.ctnet_head.hm.2", "bbox_head.ctnet_head.params.2", "bbox_head.mask_branch.2.conv",
                   "bbox_head.mlp.layers.1"]
    heads = [
        HeadSpec("hm", "hm", "confidence", conf_fn="sigmoid"),
        HeadSpec("range", "range", "confidence", conf_fn="softmax1"),
        HeadSpec("params", "params", "semantic", mask_from="hm"),
        HeadSpec("features", "features", "semantic", mask_from="range"),
    ]

    def __init__(self, backbone: str = "resnet18", model_input: ModelInput = MMDET_CULANE_INPUT):
        super().__init__(model_input)
        W, H = model_input.size
        self.backbone = ResNetTrunk(DEPTHS[backbone], returns=("layer2", "layer3", "layer4"))
        self.neck = TransConvFPN((stride_grid(H, 5), stride_grid(W, 5)))
        self.bbox_head = CondLaneHead(stride_grid(W, 3))
        self.dynamic = MatMul("bmm")  # every proposal's location kernel applied to the shared features

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.backbone(x)
        f8, f16 = self.neck(f["layer2"], f["layer3"], f["layer4"])
        z = self.bbox_head.ctnet_head(f16)
        features = self.bbox_head.mask_branch(f8)
        params = z["params"]
        B, _, h8, w8 = features.shape
        # the location logits of every proposal cell's dynamic convolution: [B, N, h8 * w8]
        weights = params[:, :DYNAMIC].flatten(2).transpose(1, 2)
        logits = self.dynamic(weights[..., :DIM + 2], dynamic_inputs(features).flatten(2)) + (weights[..., -1:] - MASK_BIAS)
        N = logits.shape[1]
        # the range MLP reads each row's logits over the columns
        rows = logits.view(B * N, h8, w8).transpose(1, 2)
        rng = self.bbox_head.mlp(rows).view(B, N, 2, h8).transpose(2, 3)
        return {"hm": z["hm"], "params": params, "features": features, "range": rng}

    def confidence_mask(self, semantic: str, outputs):
        if semantic != "features":
            return super().confidence_mask(semantic, outputs)
        # the shared features matter on the rows a confident proposal covers: per row, the largest
        # proposal x row-range probability over the cells -> [B, 1, h8, 1]
        p = torch.sigmoid(outputs["hm"]).flatten(1)[:, :, None]
        r = F.softmax(outputs["range"], dim=-1)[..., 1]
        return (p * r).amax(1)[:, None, :, None]


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"condlane-{_bb.replace('resnet', 'r')}", "condlane", MMDET, _bb, _size, "culane",
                           (800, 320), 270.0, (LAYOUT,), lambda bb=_bb, **kw: CondLaneNetPublished(bb, **kw)))
