"""SCNN: segmentation lanes after SCNN (Pan et al. 2018).

A stride-8 feature map goes through SCNN's spatial message passing (slice by slice downward, upward,
rightward, leftward); heads: ``out`` [B, 5, h, w] per-lane segmentation logits (background + 4 lane slots,
semantic) and ``lane`` [B, 4] existence logits (confidence). Decoding (``decoders.segmentation``): each
existing lane's probability map upsampled, blurred and read row by row.
"""
from __future__ import annotations

from typing import Dict, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import SMALL_DEPTHS, SMALL_WIDTHS, SmallResNet, TopDownNeck, conv_bn
from .base import HeadSpec, LaneModel
from .targets import slot_points

STRIDE = 8
SLOTS = 4


class MessagePassing(nn.Module):
    """SCNN's sequential convolutions across rows (1 x k kernels) and columns (k x 1 kernels)."""

    def __init__(self, channels: int, k: int = 9):
        super().__init__()
        self.down = nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), bias=False)
        self.up = nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), bias=False)
        self.right = nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), bias=False)
        self.left = nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), bias=False)

    @staticmethod
    def _sweep(x: torch.Tensor, conv: nn.Conv2d, dim: int, reverse: bool) -> torch.Tensor:
        slices = list(x.split(1, dim=dim))
        order = range(len(slices) - 2, -1, -1) if reverse else range(1, len(slices))
        for i in order:
            prev = slices[i + 1] if reverse else slices[i - 1]
            slices[i] = slices[i] + F.relu(conv(prev))
        return torch.cat(slices, dim=dim)

    def forward(self, x):
        x = self._sweep(x, self.down, 2, False)
        x = self._sweep(x, self.up, 2, True)
        x = self._sweep(x, self.right, 3, False)
        return self._sweep(x, self.left, 3, True)


class SCNN(LaneModel):
    family = "segmentation"
    decoder_name = "segmentation"
    head_layers = ["seg.1", "exist.4"]
    heads = [
        HeadSpec("lane", "lane", "confidence", conf_fn="sigmoid"),
        HeadSpec("out", "out", "semantic", mask_from="lane"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, **kw):
        super().__init__(**kw)
        self.backbone = SmallResNet(widths, depths)
        c = self.backbone.out_channels
        self.neck = TopDownNeck(c["s8"], c["s16"], 64)
        self.reduce = conv_bn(64, 32, 1)
        self.mp = MessagePassing(32)
        self.seg = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(32, SLOTS + 1, 1))
        self.exist = nn.Sequential(nn.AdaptiveAvgPool2d((4, 8)), nn.Flatten(), nn.Linear((SLOTS + 1) * 32, 64),
                                   nn.ReLU(inplace=True), nn.Linear(64, SLOTS))

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.mp(self.reduce(self.neck(self.backbone(x))))
        out = self.seg(f)
        return {"out": out, "lane": self.exist(F.softmax(out, dim=1))}

    def confidence_mask(self, semantic: str, outputs):
        # existence [B, 4] -> [B, 5, 1, 1]; the background channel is kept at 1
        p = torch.sigmoid(outputs["lane"])
        return torch.cat([torch.ones_like(p[:, :1]), p], dim=1)[:, :, None, None]

    # ---- training -----------------------------------------------------------------------------------
    def targets(self, slots: np.ndarray) -> Dict[str, torch.Tensor]:
        
        W, H = self.model_input.size
        B = slots.shape[0]
        seg = np.zeros((B, H // STRIDE, W // STRIDE), np.int64)
        exist = np.zeros((B, SLOTS), np.float32)
        for b in range(B):
            canvas = np.zeros((H, W), np.uint8)
            for s, lane in enumerate(slot_points(slots[b], self.model_input)):
                if lane is None:
                    continue
                cv2.polylines(canvas, [np.round(lane).astype(np.int32)], False, s + 1, thickness=16)
                exist[b, s] = 1.0
            seg[b] = canvas[STRIDE // 2::STRIDE, STRIDE // 2::STRIDE]
        return {"seg": torch.from_numpy(seg), "exist": torch.from_numpy(exist)}

    def loss(self, out, t):
        w = torch.tensor([0.4] + [1.0] * SLOTS)
        ce = F.cross_entropy(out["out"], t["seg"], weight=w)
        return ce + 0.1 * F.binary_cross_entropy_with_logits(out["lane"], t["exist"])
