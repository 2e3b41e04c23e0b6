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

Post-processing as published (CULane test settings): proposals are 3x3 local maxima of the clamped sigmoid
above 0.5, grouped when within 4 cells of a group member (the implementation then keeps the LAST member of
each group: its "highest score" choice never updates the score it compares with, kept here); per kept
proposal the column of each row is the softmax-expected column truncated to an integer, the rows from one
above the first to one below the last covered row, x = (column + offset) * 8 and y = row * 8 in input pixels,
scaled to the original frame.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
MASK_BIAS = 2.19  # subtracted from both dynamic convs' biases, as published


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


def dynamic_inputs(features: torch.Tensor) -> torch.Tensor:
    """The dynamic convolutions' input: (x / w, y / w, features) at every pixel -- both coordinates divided
    by the width, as published."""
    B, _, h, w = features.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=features.dtype, device=features.device),
                            torch.arange(w, dtype=features.dtype, device=features.device), indexing="ij")
    loc = torch.stack([xs, ys])[None].expand(B, 2, h, w) / w
    return torch.cat([loc, features], dim=1)


class CondLaneHead(nn.Module):
    def __init__(self, mask_width: int):
        super().__init__()
        self.mask_branch = nn.Sequential(*(ConvModule(DIM, DIM, 3, padding=1) for _ in range(3)))
        self.ctnet_head = CenterHead({"hm": 1, "params": 2 * DYNAMIC})
        self.mlp = RangeMLP(mask_width)


class CondLaneNetPublished(PublishedLaneModel):
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

    def decode_points(self, outputs, threshold: float = 0.5, group_distance: float = 4.0):
        """Per image, (lanes as (N, 2) original-frame points, their proposal scores)."""
        hm = torch.clamp(torch.sigmoid(outputs["hm"].detach().float().cpu()), min=1e-4, max=1 - 1e-4)
        peaks = hm * (F.max_pool2d(hm, 3, stride=1, padding=1) == hm).float()
        params = outputs["params"].detach().float().cpu()
        features = outputs["features"].detach().float().cpu()
        valid_rows = outputs["range"].detach().float().cpu().argmax(-1).numpy()  # [B, N, h8]
        W, H = self.model_input.size
        frame, crop = self.model_input.frame, self.model_input.crop_top
        ratio_x, ratio_y = frame.width / W, (frame.height - crop) / H
        h8, w8 = features.shape[-2:]
        stride = W / w8
        images, scores = [], []
        for b in range(hm.shape[0]):
            heat = peaks[b, 0].numpy()
            ys, xs = np.where(heat > threshold)
            seeds = [((int(x), int(y)), heat[y, x]) for y, x in zip(ys, xs)]
            kept = keep_last_of_groups(seeds, group_distance)
            lanes, lane_scores = [], []
            if kept:
                # the dynamic convolutions of every proposal, one group each, as the implementation runs them
                # (the grouping only picks among them afterwards)
                cells = [y * heat.shape[1] + x for (x, y), _ in seeds]
                p = params[b].flatten(1).t()[cells]  # [n, 134]
                masks = grouped_dynamic_conv(features[b:b + 1], p[:, :DYNAMIC])[kept]
                offsets = grouped_dynamic_conv(features[b:b + 1], p[:, DYNAMIC:])[kept]
                cells = [cells[k] for k in kept]
                columns = (F.softmax(masks, dim=-1) * torch.arange(w8, dtype=torch.float32)).sum(-1)
                columns = columns.numpy().astype(np.int32)
                for i, cell in enumerate(cells):
                    first, last = row_span(valid_rows[b, cell])
                    if first is None:
                        continue
                    rows = np.arange(first, last + 1)
                    cols = columns[i, rows]
                    points = np.stack([cols, rows], 1).astype(np.float32)
                    points[:, 0] = points[:, 0] + offsets[i].numpy()[rows, cols]
                    points *= stride
                    if len(points) > 1:
                        for pt in points:  # the writer's scalar arithmetic, stored back as float32
                            pt[0] = float(pt[0] * ratio_x)
                            pt[1] = float(pt[1] * ratio_y + crop)
                        lanes.append(points.astype(np.float64))
                        lane_scores.append(float(seeds[kept[i]][1]))
            images.append(lanes)
            scores.append(lane_scores)
        return images, scores


def keep_last_of_groups(seeds, distance: float) -> List[int]:
    """The implementation's proposal grouping: each proposal joins the first group holding a member within
    ``distance`` (cells), else starts one; of each group the last member is kept."""
    groups: List[List[int]] = []
    for i, ((x, y), _) in enumerate(seeds):
        for g in groups:
            if any(math.sqrt((x - seeds[j][0][0]) ** 2 + (y - seeds[j][0][1]) ** 2) <= distance for j in g):
                g.append(i)
                break
        else:
            groups.append([i])
    return [g[-1] for g in groups]


def grouped_dynamic_conv(features: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """params [n, 67] applied as n 1x1 convolutions on ``dynamic_inputs(features)`` [1, 66, h, w], one group
    each (the implementation's grouped convolution) -> [n, h, w]."""
    n = params.shape[0]
    x = dynamic_inputs(features).repeat(1, n, 1, 1)
    weight = params[:, :DIM + 2].reshape(n, DIM + 2, 1, 1)
    return F.conv2d(x, weight, params[:, DIM + 2] - MASK_BIAS, groups=n)[0]


def row_span(valid: np.ndarray):
    """Rows a lane covers: one above its first valid row to one below its last, inside the map."""
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return None, None
    return max(0, int(idx[0]) - 1), min(len(valid) - 1, int(idx[-1]) + 1)


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"condlane-{_bb.replace('resnet', 'r')}", "condlane", MMDET, _bb, _size, "culane",
                           (800, 320), 270.0, (LAYOUT,), lambda bb=_bb, **kw: CondLaneNetPublished(bb, **kw)))
