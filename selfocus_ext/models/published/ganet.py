"""GANet as its official implementation (an mmdetection fork) publishes it for CULane: the ResNet-18 and
ResNet-34 configurations at output stride 8. Input: as CondLaneNet's (the CULane image below row 270 at
800x320, the implementation's BGR statistics; the converter reverses the first convolution's input channels).

Architecture: position attention (two layers) on layer 4; lateral 1x1 convolutions of (layer 2, layer 3,
attended layer 4) summed top-down; at stride 8 the sum (``aux``) goes through a lane-points block (three 3x3
convolutions to 256 channels for the points, three for the features; 7 points per pixel regressed, and a
1 x 7 deformable convolution sampling the features there) and a 3x3 output convolution. Heads: ``kpts_hm``
[B, 1, h8, w8] key-point logits (confidence) from the output; ``pts_offset`` [B, 2, h8, w8] (each key point's
offset to its lane's start point) and ``int_offset`` [B, 2, h8, w8] (its sub-pixel correction) from ``aux``
(semantic). The implementation's unused branches (the centre heatmap, the deformable blocks and outputs of the
coarser levels, the refinement convolution) are dropped by the converter.

Post-processing as published (CULane test settings, ``group_fast`` by centre): the ``ganet-published``
decoder (selfocus_ext/decoders/published_keypoint.py), batched in C++ with the Monte-Carlo dimension. Score of
a lane (the implementation gives none): the mean key-point probability of its points.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..base import HeadSpec
from ...layers.deform import DeformConv1d
from ...lanes.frames import ModelInput
from .base import PublishedLaneModel
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout, flip_first_conv
from .condlane import DIM, MMDET, MMDET_CULANE_INPUT, CenterHead
from .layers import AttendedLaterals, ConvModule, stride_grid
from .resnet import DEPTHS, ResNetTrunk

POINTS = 7  # deformable taps of the stride-8 lane-points block
FEAT = 256

LAYOUT = CheckpointLayout(MMDET, top_keys=("state_dict",), strip_prefixes=("module.",),
                          ignore=(r"^neck\.fpn_convs\.[12]\.", r"^neck\.def_convs\.[12]\.",
                                  r"^neck\.def_convs\.0\.reppoints_pts_refine_", r"^bbox_head\.centerpts_head\."),
                          transform=flip_first_conv("backbone.conv1.weight"))


class LanePointsConv(nn.Module):
    """Per pixel, 7 points along a horizontal line (offsets regressed from the point branch) where a 1 x 7
    deformable convolution samples the feature branch."""

    def __init__(self, channels: int = DIM, feat: int = FEAT, points: int = POINTS):
        super().__init__()
        self.cls_convs = nn.ModuleList(ConvModule(channels if i == 0 else feat, feat, 3, padding=1, norm=False)
                                       for i in range(3))
        self.reg_convs = nn.ModuleList(ConvModule(channels if i == 0 else feat, feat, 3, padding=1, norm=False)
                                       for i in range(3))
        pad = (points - 1) // 2
        self.reppoints_cls_conv = DeformConv1d(feat, channels, points, 1, pad)
        self.reppoints_pts_init_conv = nn.Conv2d(feat, channels, 3, 1, 1)
        self.reppoints_pts_init_out = nn.Conv2d(channels, 2 * points, 1)
        # each tap's own place in the 1 x k kernel, (dy, dx) = (0, j - pad): the regressed points are relative
        # to the pixel, the deformable convolution's offsets to the tap
        base = torch.stack([torch.zeros(points), torch.arange(-pad, pad + 1, dtype=torch.float32)], 1)
        self.register_buffer("tap_positions", base.reshape(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        cls_feat, pts_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            pts_feat = conv(pts_feat)
        points = self.reppoints_pts_init_out(F.relu(self.reppoints_pts_init_conv(pts_feat)))
        return F.relu(self.reppoints_cls_conv(cls_feat, points - self.tap_positions))


class DeformFPN(AttendedLaterals):
    """The attended laterals' top-down sum at stride 8 (``aux``) through the lane-points block and a 3x3 output
    convolution; returns (output, aux)."""

    def __init__(self, grid32):
        super().__init__(grid32)
        self.def_convs = nn.ModuleList([LanePointsConv()])
        self.fpn_convs = nn.ModuleList([ConvModule(DIM, DIM, 3, padding=1, norm=False, act=False)])

    def forward(self, l2, l3, l4):
        aux = self.summed_laterals(l2, l3, l4)[0]
        return self.fpn_convs[0](self.def_convs[0](aux)), aux


class GANetHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.keypts_head = CenterHead({"hm": 1})
        self.offset_head = CenterHead({"offset_map": 2})
        self.reg_head = CenterHead({"offset_map": 2})


class GANetPublished(PublishedLaneModel):
    decoder_name = "ganet-published"
    supports_monte_carlo = True
    lines_format = ("two-decimals", {})
    max_lanes = 16  # the implementation writes every lane (files: all); the LaneSet, scored, holds 16
    family = "keypoint"
    head_layers = ["bbox_head.keypts_head.hm.2", "bbox_head.offset_head.offset_map.2",
                   "bbox_head.reg_head.offset_map.2"]
    heads = [
        HeadSpec("kpts_hm", "kpts_hm", "confidence", conf_fn="sigmoid"),
        HeadSpec("pts_offset", "pts_offset", "semantic", mask_from="kpts_hm"),
        HeadSpec("int_offset", "int_offset", "semantic", mask_from="kpts_hm"),
    ]

    def __init__(self, backbone: str = "resnet18", model_input: ModelInput = MMDET_CULANE_INPUT):
        super().__init__(model_input)
        W, H = model_input.size
        self.backbone = ResNetTrunk(DEPTHS[backbone], returns=("layer2", "layer3", "layer4"))
        self.neck = DeformFPN((stride_grid(H, 5), stride_grid(W, 5)))
        self.bbox_head = GANetHead()

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.backbone(x)
        features, aux = self.neck(f["layer2"], f["layer3"], f["layer4"])
        h = self.bbox_head
        return {"kpts_hm": h.keypts_head(features)["hm"], "pts_offset": h.offset_head(aux)["offset_map"],
                "int_offset": h.reg_head(aux)["offset_map"]}


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"ganet-{_bb.replace('resnet', 'r')}", "ganet", MMDET, _bb, _size, "culane", (800, 320),
                           270.0, (LAYOUT,), lambda bb=_bb, **kw: GANetPublished(bb, **kw)))
