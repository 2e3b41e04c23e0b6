"""LaneATT: anchor lanes after LaneATT (Tabelini et al. 2021).

Anchors are straight lines leaving the left, bottom and right borders of the input at fixed angles. Each
anchor pools the stride-16 features it crosses (one column per feature row). LaneATT's anchor attention
mixes in the other anchors' features: a linear layer scores the N - 1 other anchors from the anchor's own
features, a softmax turns the scores into weights, and the weighted sum of the other anchors' features is
concatenated with the anchor's own. A small MLP on that predicts the class logits ``cls_logits`` [B, N, 2]
(confidence) and ``reg`` [B, N, 1 + R] (semantic): the lane's length in rows and its x offset from the
anchor at R fixed rows. Decoding: score threshold, line NMS (mean |dx| over shared rows), top-k, and each
lane cropped to its predicted length.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import SMALL_DEPTHS, SMALL_WIDTHS, SmallResNet, conv_bn
from .base import HeadSpec, LaneModel
from .targets import slot_points, x_at

ROWS = 40  # offset rows, every 4 input px from the bottom
LEFT_ANGLES = (72.0, 60.0, 49.0, 39.0, 30.0, 22.0)
RIGHT_ANGLES = (108.0, 120.0, 131.0, 141.0, 150.0, 158.0)
BOTTOM_ANGLES = (165.0, 150.0, 141.0, 131.0, 120.0, 108.0, 100.0, 90.0, 80.0, 72.0, 60.0, 49.0, 39.0, 30.0, 15.0)


def make_anchors(width: int, height: int, side_starts: int = 8, bottom_starts: int = 24):
    """(x0, y0, angle in degrees) of every anchor, in input pixels; y down, angles from the +x axis upward."""
    anchors = []
    for y in np.linspace(height * 0.4, height - 1, side_starts):
        anchors += [(0.0, y, a) for a in LEFT_ANGLES]
        anchors += [(width - 1.0, y, a) for a in RIGHT_ANGLES]
    for x in np.linspace(0, width - 1, bottom_starts):
        anchors += [(x, height - 1.0, a) for a in BOTTOM_ANGLES]
    return np.array(anchors, np.float32)


def anchor_xs(anchors: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """x of each anchor at rows ys [N, R]; NaN below the anchor's start."""
    x0, y0, ang = anchors[:, 0:1], anchors[:, 1:2], np.radians(anchors[:, 2:3])
    xs = x0 + (y0 - ys[None, :]) / np.tan(ang)
    xs[ys[None, :] > y0 + 1e-3] = np.nan
    return xs.astype(np.float32)


def spread_off_diagonal(weights: torch.Tensor) -> torch.Tensor:
    """[B, N, N - 1] weights of each anchor over the others (in index order) -> [B, N, N] with a zero diagonal.

    Reshapes and concatenations only (no index assignment), so the exported graph stays plain: in row-major
    order the N^2 - 1 entries after the first are N - 1 runs of (N off-diagonal entries, one diagonal entry).
    """
    B, N, _ = weights.shape
    if N == 1:
        return weights.new_zeros(B, 1, 1)
    runs = weights.reshape(B, N - 1, N)
    runs = torch.cat([runs, runs.new_zeros(B, N - 1, 1)], dim=2).reshape(B, (N - 1) * (N + 1))
    return torch.cat([runs.new_zeros(B, 1), runs], dim=1).reshape(B, N, N)


class AnchorAttention(nn.Module):
    """LaneATT's attention over anchors: features [B, N, D] -> the other anchors' features, weighted [B, N, D]."""

    def __init__(self, features: int, anchors: int):
        super().__init__()
        self.score = nn.Linear(features, anchors - 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(feats), dim=-1)
        return torch.bmm(spread_off_diagonal(weights), feats)


class LaneATT(LaneModel):
    family = "anchor"
    decoder_name = "laneatt"
    head_layers = ["cls", "reg_head"]
    heads = [
        HeadSpec("cls_logits", "cls_logits", "confidence", conf_fn="softmax1"),
        HeadSpec("reg", "reg", "semantic", mask_from="cls_logits"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, **kw):
        super().__init__(**kw)
        W, H = self.model_input.size
        self.backbone = SmallResNet(widths, depths)
        self.reduce = conv_bn(self.backbone.out_channels["s16"], 32, 1)
        self.register_buffer("anchors", torch.from_numpy(make_anchors(W, H)), persistent=False)
        self.row_ys = (H - 1) - 4.0 * np.arange(ROWS, dtype=np.float32)
        fh, fw = H // 16, W // 16
        feat_y = (np.arange(fh) + 0.5) * 16 - 0.5
        ax = anchor_xs(self.anchors.numpy(), feat_y)  # [N, fh]
        cols = np.floor((ax + 0.5) / 16)
        valid = np.isfinite(ax) & (cols >= 0) & (cols < fw)
        self.register_buffer("pool_cols", torch.from_numpy(np.where(valid, cols, 0).astype(np.int64)), persistent=False)
        self.register_buffer("pool_valid", torch.from_numpy(valid.astype(np.float32)), persistent=False)
        self.register_buffer("anchor_rows", torch.from_numpy(anchor_xs(self.anchors.numpy(), self.row_ys)), persistent=False)
        n = self.anchors.shape[0]
        self.attention = AnchorAttention(32 * fh, n)
        self.fc = nn.Sequential(nn.Linear(2 * 32 * fh, 128), nn.ReLU(inplace=True))
        self.cls = nn.Linear(128, 2)
        self.reg_head = nn.Linear(128, 1 + ROWS)
        self.num_anchors = n

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.reduce(self.backbone(x)["s16"])  # [B, C, fh, fw]
        B, C, fh, fw = f.shape
        rows = torch.arange(fh, device=f.device).expand_as(self.pool_cols)
        pooled = f[:, :, rows, self.pool_cols] * self.pool_valid  # [B, C, N, fh]
        feats = pooled.permute(0, 2, 1, 3).reshape(B, self.num_anchors, C * fh)
        h = self.fc(torch.cat([self.attention(feats), feats], dim=-1))
        return {"cls_logits": self.cls(h), "reg": self.reg_head(h)}

    # ---- training -----------------------------------------------------------------------------------
    def targets(self, slots: np.ndarray, pos_dist: float = 8.0, neg_dist: float = 12.0) -> Dict[str, torch.Tensor]:
        B = slots.shape[0]
        ax = self.anchor_rows.numpy()  # [N, R]
        N = ax.shape[0]
        label = np.zeros((B, N), np.int64)  # 0 negative, 1 positive
        weight = np.ones((B, N), np.float32)  # 0 = ignored
        off = np.zeros((B, N, ROWS), np.float32)
        off_mask = np.zeros((B, N, ROWS), np.float32)
        length = np.zeros((B, N), np.float32)
        for b in range(B):
            best = np.full(N, np.inf)
            for lane in slot_points(slots[b], self.model_input):
                if lane is None:
                    continue
                gx = x_at(lane, self.row_ys)  # [R]
                both = ~np.isnan(gx)[None, :] & ~np.isnan(ax)
                cnt = both.sum(1)
                d = np.where(cnt >= 5, np.nansum(np.where(both, np.abs(ax - gx[None, :]), 0), 1) / np.maximum(cnt, 1), np.inf)
                pos = d < pos_dist
                if not pos.any() and np.isfinite(d).any():
                    pos = d == d.min()
                closer = pos & (d < best)
                best = np.minimum(best, d)
                valid_rows = np.nonzero(~np.isnan(gx))[0]
                for n in np.nonzero(closer)[0]:
                    label[b, n] = 1
                    rows_ok = ~np.isnan(gx) & ~np.isnan(ax[n])
                    off[b, n] = np.where(rows_ok, gx - np.nan_to_num(ax[n]), 0)
                    off_mask[b, n] = rows_ok
                    start = np.nonzero(~np.isnan(ax[n]))[0]
                    k0 = start[0] if len(start) else 0
                    length[b, n] = max(0, valid_rows.max() - k0 + 1) if len(valid_rows) else 0
            weight[b] = np.where((label[b] == 0) & (best < neg_dist), 0.0, 1.0)
        return {k: torch.from_numpy(v) for k, v in dict(label=label, weight=weight, off=off, off_mask=off_mask,
                                                          length=length).items()}

    def loss(self, out, t, alpha: float = 0.25, gamma: float = 2.0):
        logp = F.log_softmax(out["cls_logits"], dim=-1)
        pt = logp.gather(-1, t["label"].unsqueeze(-1)).squeeze(-1)
        a = torch.where(t["label"] == 1, torch.tensor(alpha), torch.tensor(1 - alpha))
        focal = -(a * (1 - pt.exp()) ** gamma * pt * t["weight"]).sum()
        pos = (t["label"] == 1).float()
        npos = pos.sum().clamp(min=1)
        reg = out["reg"]
        l_off = (F.smooth_l1_loss(reg[..., 1:], t["off"], reduction="none") * t["off_mask"]).sum() / t["off_mask"].sum().clamp(min=1)
        l_len = (F.smooth_l1_loss(reg[..., 0], t["length"], reduction="none") * pos).sum() / npos
        return focal / npos * 10 + l_off + 0.1 * l_len

    def decoder_inputs(self) -> dict:
        return dict(anchor_xs=self.anchor_rows, row_ys=self.row_ys)
