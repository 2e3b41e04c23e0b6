"""LaneATT (anchor-based, with anchor attention) as pytorch-auto-drive and the official implementation
publish it: ResNet-18/34 to stride 32 on the whole CULane image at 640x360 (pixels scaled to [0, 1], no
mean/std), a 1x1 convolution to 64 channels, features pooled along 1000 of 2784 line anchors (chosen by the
training set's anchor frequencies, a file shipped with the implementations), attention over anchors, and two
linear heads.

Heads: ``cls`` [B, 1000, 2] logits (confidence, foreground column) and ``reg`` [B, 1000, 73] (length and 72
x offsets added to the anchors; semantic). The two checkpoint layouts differ in one convention: the
official model's length is the regressed value, pytorch-auto-drive's adds the anchor's start x to it; the
converter records which (``length_adds_start_x``), and turns the official model's BGR input (OpenCV's
channel order) into the project's RGB by reversing its first convolution's input channels. Post-processing as pytorch-auto-drive runs it: softmax
score above 0.5, line suppression (threshold 50 px, 4 lanes; the C++ op ``selfocus::line_nms``), the
length rounded, the points from the start row up to the end row, the part below the start kept while it
stays inside the image, in original-frame pixels.
"""
from __future__ import annotations

import math
import os
from typing import Dict, Optional

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
from .checkpoint import CheckpointError, CheckpointLayout, flip_first_conv
from .resnet import DEPTHS, ResNetTrunk

# pytorch-auto-drive's test transform (PIL decoding and bilinear resize, ToTensor, no normalisation); the
# official LaneATT's differs (OFFICIAL_LAYOUT.input: OpenCV decoding, imgaug's cubic resize, img / 255. in float64)
LANEATT_INPUT = ModelInput(get_frame("culane"), (640, 360), 0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                           reader="pil", resize="pil-bilinear")
POINTS = 72
LEFT = (72., 60., 49., 39., 30., 22.)
RIGHT = (108., 120., 131., 141., 150., 158.)
BOTTOM = (165., 150., 141., 131., 120., 108., 100., 90., 80., 72., 60., 49., 39., 30., 15.)

PAD_LAYOUT = CheckpointLayout("pytorch-auto-drive", top_keys=("model",), inject=(("length_adds_start_x", 1.0),))


# torchvision's ResNet children as a Sequential: 0 conv1, 1 bn1, 4..7 layer1..layer4
OFFICIAL_LAYOUT = CheckpointLayout(
    "LaneATT (official)", top_keys=("model",),
    renames=((r"^feature_extractor\.0\.", "backbone.conv1."), (r"^feature_extractor\.1\.", "backbone.bn1."),
             (r"^feature_extractor\.([4-7])\.", lambda m: f"backbone.layer{int(m.group(1)) - 3}.")),
    inject=(("length_adds_start_x", 0.0),), transform=flip_first_conv("backbone.conv1.weight"),
    input=(("reader", "cv2"), ("resize", "cv2-cubic"), ("arithmetic", "float64")),
    settings=(("official_post_processing", True), ("lines_format", ("five-decimals", {}))))


def line_anchors(ys: torch.Tensor, width: int, lateral: int = 72, bottom: int = 128) -> torch.Tensor:
    """The anchor set [2784, 2 + len(ys)]: (start y, start x, x at each of ``ys``) in input pixels, for lines
    from the left edge, the bottom and the right edge at the published angles, in the published order."""
    rows = []
    for angles, side, n in ((LEFT, "left", lateral), (BOTTOM, "bottom", bottom), (RIGHT, "right", lateral)):
        for origin in np.linspace(1.0, 0.0, num=n):
            start_x, start_y = (0.0, origin) if side == "left" else (1.0, origin) if side == "right" else (origin, 1.0)
            for angle in angles:
                a = torch.zeros(2 + len(ys))
                a[0], a[1] = 1 - start_y, start_x
                a[2:] = (start_x + (1 - ys - 1 + start_y) / math.tan(angle * math.pi / 180.0)) * width
                rows.append(a)
    return torch.stack(rows)


class LaneATTPublished(PublishedLaneModel):
    # pytorch-auto-drive's; the official layout writes splines (OFFICIAL_LAYOUT.settings)
    lines_format = ("pad", {"x_type": "float32", "y_type": "float32"})
    # the official test script: its line NMS layout, and each lane written as its spline read on every frame row
    official_post_processing = False
    family = "anchor"
    head_layers = ["cls_layer", "reg_layer"]
    heads = [HeadSpec("cls", "cls", "confidence", conf_fn="softmax1"),
             HeadSpec("reg", "reg", "semantic", mask_from="cls")]

    def __init__(self, backbone: str = "resnet18", model_input: ModelInput = LANEATT_INPUT, topk: int = 1000,
                 channels: int = 64):
        super().__init__(model_input)
        w, h = model_input.size
        self.fmap_w, self.fmap_h, self.channels = w // 32, h // 32, channels
        self.backbone = ResNetTrunk(DEPTHS[backbone], returns=("layer4",))
        self.conv1 = nn.Conv2d(512, channels, 1)
        self.attention_layer = nn.Linear(channels * self.fmap_h, topk - 1)
        self.attend = MatMul("bmm")  # the attention matrix applied to the pooled features
        self.cls_layer = nn.Linear(2 * channels * self.fmap_h, 2)
        self.reg_layer = nn.Linear(2 * channels * self.fmap_h, POINTS + 1)
        self.register_buffer("anchor_order", torch.arange(topk))
        self.register_buffer("length_adds_start_x", torch.tensor(1.0))
        self.register_load_state_dict_post_hook(lambda module, keys: module._place_anchors())
        self._all = line_anchors(torch.linspace(1, 0, steps=POINTS), w)
        self._all_cut = line_anchors(torch.linspace(1, 0, steps=self.fmap_h), w)
        self._place_anchors()

    def use_anchor_frequencies(self, freq: torch.Tensor) -> None:
        """Chooses the anchors as the implementations do: the ``topk`` most frequent in training."""
        freq = torch.as_tensor(freq).cpu()
        if freq.dim() != 1 or freq.numel() != len(self._all):
            raise ValueError(f"anchors: expected a frequency per anchor ({len(self._all)}), got shape {tuple(freq.shape)}")
        self.anchor_order.copy_(torch.argsort(freq, descending=True)[: len(self.anchor_order)])
        self._place_anchors()

    def _place_anchors(self) -> None:
        order = self.anchor_order.cpu()
        device = self.anchor_order.device
        self.register_buffer("anchors", self._all[order].to(device), persistent=False)
        cut = self._all_cut[order]
        xs = torch.flip((cut[:, 2:] / 32).round().long(), dims=(1,))  # rows top to bottom
        rows = torch.arange(self.fmap_h)
        self.register_buffer("cut_index", (rows * self.fmap_w + xs.clamp(0, self.fmap_w - 1)).reshape(-1).to(device),
                             persistent=False)
        self.register_buffer("cut_valid", ((xs >= 0) & (xs <= self.fmap_w)).float()[:, None, :].to(device),
                             persistent=False)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.conv1(self.backbone(x)["layer4"])
        B, A = f.shape[0], self.anchors.shape[0]
        pooled = f.flatten(2).index_select(2, self.cut_index).view(B, self.channels, A, self.fmap_h)
        pooled = (pooled.permute(0, 2, 1, 3) * self.cut_valid).reshape(B, A, self.channels * self.fmap_h)
        att = F.softmax(self.attention_layer(pooled), dim=-1)  # [B, A, A - 1]: every other anchor
        # the attention matrix with a zero diagonal: rows of A - 1 weights spread around the diagonal
        rows = F.pad(att.reshape(B, A - 1, A), (1, 0)).reshape(B, (A - 1) * (A + 1))
        matrix = F.pad(rows, (0, 1)).reshape(B, A, A)
        feats = torch.cat([self.attend(matrix, pooled), pooled], dim=-1)
        return {"cls": self.cls_layer(feats), "reg": self.reg_layer(feats)}

    def confidence_mask(self, semantic: str, outputs):
        return F.softmax(outputs["cls"], dim=-1)[..., 1:]

    # decoding: the batched native decoder (csrc/core/decoders/published/anchor.h) with the implementation's
    # post-processing as its reference (selfocus_ext/decoders/published_anchor.py)
    decoder_name = "laneatt-published"
    supports_monte_carlo = True

    def decoder_inputs(self) -> dict:
        return dict(anchors=self.anchors, length_adds_start_x=float(self.length_adds_start_x),
                    official=self.official_post_processing)

    def proposals(self, outputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, A, 2 + 72]: (start y, length, x offsets) in input pixels, as the implementations build them."""
        return self.lane_decoder().proposals(outputs)


def attach_anchors(model: LaneATTPublished, path: Optional[str]) -> None:
    """Reads an anchor frequency file (data/culane_anchors_freq.pt of the implementations; weights only)."""
    if path is None:
        raise CheckpointError("anchors: LaneATT chooses its anchors from the training set's anchor frequencies; "
                              "pass the implementation's anchor frequency file (data/culane_anchors_freq.pt)")
    if not os.path.isfile(path):
        raise CheckpointError(f"anchors: no file {path}")
    try:
        freq = torch.load(path, map_location="cpu", weights_only=True)
        model.use_anchor_frequencies(freq)
    except Exception as exc:  # an unpickling error, a file of another kind, a tensor of the wrong shape
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"anchors: {path} is not an anchor frequency tensor ({first})") from None


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"laneatt-{_bb.replace('resnet', 'r')}", "laneatt", "pytorch-auto-drive / LaneATT (official)",
                           _bb, _size, "culane", (640, 360), 0.0, (PAD_LAYOUT, OFFICIAL_LAYOUT),
                           lambda bb=_bb, **kw: LaneATTPublished(bb, **kw), extras=("anchors",)))
