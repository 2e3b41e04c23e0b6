"""GANet: keypoint lanes after GANet (Wang et al. 2022).

Heads at stride 8: ``kpts_hm`` (keypoint heatmap, confidence), ``pts_offset`` (each keypoint's offset to its
lane's start point, in cells) and ``int_offset`` (sub-cell position of the keypoint). Decoding: (1, 3)
max-pool NMS on the heatmap, threshold, start seeds where the offset to the start is below one cell,
seeds clustered within 5 cells, every keypoint assigned to the seed its offset points at.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch
from torch import nn

from .backbone import SMALL_DEPTHS, SMALL_WIDTHS, SmallResNet, TopDownNeck, conv_bn
from .base import HeadSpec, LaneModel
from .targets import slot_points, x_at

STRIDE = 8


def _head(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn(cin, cin, 3), nn.Conv2d(cin, cout, 1))


class GANet(LaneModel):
    family = "keypoint"
    decoder_name = "ganet"
    head_layers = ["hm.1", "pts.1", "int.1"]
    heads = [
        HeadSpec("kpts_hm", "kpts_hm", "confidence", conf_fn="sigmoid"),
        HeadSpec("pts_offset", "pts_offset", "semantic", mask_from="kpts_hm"),
        HeadSpec("int_offset", "int_offset", "semantic", mask_from="kpts_hm"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, **kw):
        super().__init__(**kw)
        self.backbone = SmallResNet(widths, depths)
        c = self.backbone.out_channels
        self.neck = TopDownNeck(c["s8"], c["s16"], 64)
        self.hm = _head(64, 1)
        self.pts = _head(64, 2)
        self.int = _head(64, 2)
        nn.init.constant_(self.hm[-1].bias, -2.19)  # prior 0.1, as CenterNet-style heads

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.neck(self.backbone(x))
        return {"kpts_hm": self.hm(f), "pts_offset": self.pts(f), "int_offset": self.int(f)}

    # ---- training -----------------------------------------------------------------------------------
    def targets(self, slots: np.ndarray) -> Dict[str, torch.Tensor]:
        """slots [B, 4, R] frame x -> heatmap [B,1,h,w], offsets [B,2,h,w] and their mask [B,1,h,w]."""
        w, h = self.model_input.size[0] // STRIDE, self.model_input.size[1] // STRIDE
        B = slots.shape[0]
        hm = np.zeros((B, 1, h, w), np.float32)
        pts = np.zeros((B, 2, h, w), np.float32)
        intr = np.zeros((B, 2, h, w), np.float32)
        mask = np.zeros((B, 1, h, w), np.float32)
        cy = (np.arange(h) + 0.5) * STRIDE - 0.5  # cell-centre rows in input pixels
        for b in range(B):
            for lane in slot_points(slots[b], self.model_input):
                if lane is None:
                    continue
                xs = x_at(lane, cy)
                rows = np.nonzero(~np.isnan(xs) & (xs >= 0) & (xs <= self.model_input.size[0] - 1))[0]
                if len(rows) < 2:
                    continue
                start_r = rows.max()  # bottom-most cell row of the lane
                start = ((xs[start_r] + 0.5) / STRIDE, start_r + 0.5)
                for r in rows:
                    gx = (xs[r] + 0.5) / STRIDE  # lane x in cell units
                    c = int(np.floor(gx))
                    for d in range(-2, 3):
                        cc = c + d
                        if 0 <= cc < w:
                            hm[b, 0, r, cc] = max(hm[b, 0, r, cc], float(np.exp(-0.5 * ((cc + 0.5 - gx) / 0.8) ** 2)))
                    if 0 <= c < w:
                        hm[b, 0, r, c] = 1.0
                        intr[b, :, r, c] = (gx - (c + 0.5), 0.0)
                        pts[b, :, r, c] = (start[0] - (c + 0.5), start[1] - (r + 0.5))
                        mask[b, 0, r, c] = 1.0
        return {k: torch.from_numpy(v) for k, v in dict(hm=hm, pts=pts, int=intr, mask=mask).items()}

    def loss(self, out: Dict[str, torch.Tensor], t: Dict[str, torch.Tensor]) -> torch.Tensor:
        p = torch.sigmoid(out["kpts_hm"]).clamp(1e-4, 1 - 1e-4)
        pos = t["hm"].eq(1).float()
        neg = 1 - pos
        focal = -(pos * (1 - p) ** 2 * torch.log(p) + neg * (1 - t["hm"]) ** 4 * p ** 2 * torch.log(1 - p)).sum()
        n = pos.sum().clamp(min=1)
        m = t["mask"]
        l1 = ((out["pts_offset"] - t["pts"]).abs() * m).sum() / n + ((out["int_offset"] - t["int"]).abs() * m).sum() / n
        return focal / n + 0.5 * l1
