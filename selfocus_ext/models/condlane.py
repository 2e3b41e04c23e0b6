"""CondLaneNet: keypoint lanes with conditional (dynamic) convolutions, after CondLaneNet (Liu et al. 2021).

A proposal heatmap at stride 16 marks where lanes start (their lowest point in the image). At each cell a
parameter map holds the weights of two dynamic 1x1 convolutions (C feature weights, two weights on the
pixel's position relative to the cell, a bias: C + 3 each): the *location* conv, whose per-row softmax over
columns gives the lane's expected column, and the *offset* conv, the sub-column correction read at the
rounded column. Both run on one shared feature map at stride 8. A vertical-range MLP reads each row's
location logits and says whether the lane covers that row.

The dynamic convs are part of decoding (``torch.ops.selfocus.decode_condlane``): the decoder takes the
parameter map and the shared features themselves, so noise-score curves perturb them like any head. The
range head is run by the model on every proposal cell (a dense batched matmul, ~17 M multiply-adds at the
zoo's input), so that its MLP is an ordinary quantized layer and the decoder needs no weights of its own.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import SMALL_DEPTHS, SMALL_WIDTHS, SmallResNet, TopDownNeck, conv_bn
from .base import HeadSpec, LaneModel
from .targets import slot_points, x_at

STRIDE = 8  # shared features
PROPOSAL_STRIDE = 16
FEATURES = 64
CONV_WEIGHTS = FEATURES + 3  # per dynamic conv: features, relative x, relative y, bias


def relative_positions(h8: int, w8: int, h16: int, w16: int):
    """Per proposal cell and feature pixel, the pixel's position relative to the cell's centre on the
    feature grid, in units of the feature map's width and height: rx [N, h8*w8], ry [N, h8*w8]."""
    sx, sy = w8 / w16, h8 / h16
    xp = (np.arange(w16) + 0.5) * sx - 0.5
    yp = (np.arange(h16) + 0.5) * sy - 0.5
    gy, gx = np.meshgrid(np.arange(h8), np.arange(w8), indexing="ij")
    cy, cx = np.meshgrid(yp, xp, indexing="ij")
    rx = (gx.reshape(1, -1) - cx.reshape(-1, 1)) / w8
    ry = (gy.reshape(1, -1) - cy.reshape(-1, 1)) / h8
    return rx, ry


def dynamic_conv(weights: torch.Tensor, features: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor) -> torch.Tensor:
    """weights [B, N, C + 3] applied at every pixel of features [B, C, P] with the positions rx, ry [N, P]
    (or [B, N, P]) -> [B, N, P]."""
    C = features.shape[1]
    out = torch.bmm(weights[..., :C], features)
    return out + weights[..., C:C + 1] * rx + weights[..., C + 1:C + 2] * ry + weights[..., C + 2:C + 3]


class CondLaneNet(LaneModel):
    family = "keypoint"
    decoder_name = "condlane"
    head_layers = ["proposal_head.1", "param_head.1", "feature_head.1", "range_mlp.2"]
    heads = [
        HeadSpec("proposal", "proposal", "confidence", conf_fn="sigmoid"),
        HeadSpec("range", "range", "confidence", conf_fn="sigmoid"),
        HeadSpec("params", "params", "semantic", mask_from="proposal"),
        HeadSpec("features", "features", "semantic", mask_from="range"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, **kw):
        super().__init__(**kw)
        W, H = self.model_input.size
        self.backbone = SmallResNet(widths, depths)
        c = self.backbone.out_channels
        self.neck = TopDownNeck(c["s8"], c["s16"], 64)
        self.context = conv_bn(c["s16"], 96, 3)
        self.proposal_head = nn.Sequential(conv_bn(96, 64, 3), nn.Conv2d(64, 1, 1))
        self.param_head = nn.Sequential(conv_bn(96, 64, 3), nn.Conv2d(64, 2 * CONV_WEIGHTS, 1))
        self.feature_head = nn.Sequential(conv_bn(64, 64, 3), nn.Conv2d(64, FEATURES, 1))
        self.grid8 = (H // STRIDE, W // STRIDE)
        self.grid16 = (H // PROPOSAL_STRIDE, W // PROPOSAL_STRIDE)
        self.range_mlp = nn.Sequential(nn.Linear(self.grid8[1], 32), nn.ReLU(inplace=True), nn.Linear(32, 1))
        rx, ry = relative_positions(*self.grid8, *self.grid16)
        self.register_buffer("rx", torch.from_numpy(rx.astype(np.float32)), persistent=False)
        self.register_buffer("ry", torch.from_numpy(ry.astype(np.float32)), persistent=False)
        nn.init.constant_(self.proposal_head[-1].bias, -2.19)  # prior 0.1
        with torch.no_grad():
            self.param_head[-1].weight.mul_(0.1)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        feats = self.backbone(x)
        s16 = self.context(feats["s16"])
        features = self.feature_head(self.neck(feats))
        params = self.param_head(s16)
        B, _, h8, w8 = features.shape
        h16, w16 = params.shape[-2:]
        if (h8, w8, h16, w16) != (*self.grid8, *self.grid16):
            raise ValueError(f"CondLaneNet: expected feature grids {self.grid8} and {self.grid16} for the input "
                             f"{self.model_input.size}, got {(h8, w8)} and {(h16, w16)}")
        loc = params[:, :CONV_WEIGHTS].flatten(2).transpose(1, 2)  # [B, N, C + 3]
        logits = dynamic_conv(loc, features.flatten(2), self.rx, self.ry).view(B, h16 * w16, h8, w8)
        rng = self.range_mlp(logits).squeeze(-1)  # [B, N, h8]
        return {"proposal": self.proposal_head(s16), "params": params, "features": features,
                "range": rng.transpose(1, 2).reshape(B, h8, h16, w16)}

    def confidence_mask(self, semantic: str, outputs):
        if semantic != "features":
            return super().confidence_mask(semantic, outputs)
        # the shared features matter on the rows some confident lane covers: per row, the largest
        # proposal x range probability over the proposal cells -> [B, 1, h8, 1]
        p = torch.sigmoid(outputs["proposal"]).flatten(1)[:, None, :]
        r = torch.sigmoid(outputs["range"]).flatten(2)
        return (p * r).amax(-1)[:, None, :, None]

    # ---- training -----------------------------------------------------------------------------------
    def targets(self, slots: np.ndarray) -> Dict[str, object]:
        """Proposal heatmap [B, 1, h16, w16]; per image the lanes' start cells [G, 2] (row, column) and their
        x on the feature grid's rows [G, h8] (feature columns, NaN where the lane is not in the image)."""
        W, H = self.model_input.size
        (h8, _), (h16, w16) = self.grid8, self.grid16
        B = slots.shape[0]
        hm = np.zeros((B, 1, h16, w16), np.float32)
        cy = (np.arange(h8) + 0.5) * STRIDE - 0.5
        gy, gx = np.meshgrid(np.arange(h16) + 0.5, np.arange(w16) + 0.5, indexing="ij")
        cells, xs8 = [], []
        for b in range(B):
            bc, bx = [], []
            for lane in slot_points(slots[b], self.model_input):
                if lane is None:
                    continue
                xs = x_at(lane, cy)
                ok = np.isfinite(xs) & (xs >= 0) & (xs <= W - 1)
                if ok.sum() < 2:
                    continue
                low = np.nonzero(ok)[0].max()  # the lane's start: its lowest row inside the image
                u, v = (xs[low] + 0.5) / PROPOSAL_STRIDE, (cy[low] + 0.5) / PROPOSAL_STRIDE
                hm[b, 0] = np.maximum(hm[b, 0], np.exp(-((gx - u) ** 2 + (gy - v) ** 2) / 2.0))
                r, c = min(int(v), h16 - 1), min(int(u), w16 - 1)
                hm[b, 0, r, c] = 1.0
                if (r, c) in bc:  # two lanes starting in one cell: the heatmap marks it, one lane is learnt
                    continue
                bc.append((r, c))
                bx.append(np.where(ok, (xs + 0.5) / STRIDE - 0.5, np.nan))
            cells.append(np.array(bc, np.int64).reshape(-1, 2))
            xs8.append(np.array(bx, np.float32).reshape(-1, h8))
        return {"hm": torch.from_numpy(hm), "cells": cells, "xs": xs8}

    def loss(self, out, t):
        p = torch.sigmoid(out["proposal"]).clamp(1e-4, 1 - 1e-4)
        pos = t["hm"].eq(1).float()
        focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - t["hm"]) ** 4 * p ** 2 * torch.log(1 - p)).sum()
        focal = focal / pos.sum().clamp(min=1)
        (h8, w8), (h16, w16) = self.grid8, self.grid16
        cols = torch.arange(w8, dtype=torch.float32)
        n_rows, n_inst = 0, 0
        l_loc = l_exp = l_off = l_rng = out["proposal"].new_zeros(())
        for b in range(len(t["cells"])):
            cells, gx = t["cells"][b], t["xs"][b]
            if len(cells) == 0:
                continue
            # each lane from its start cell and the 8 around it (proposals are found a cell off)
            idx, lane = [], []
            taken = {(int(r), int(c)) for r, c in cells}
            for g, (r, c) in enumerate(cells):
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        rr, cc = int(r) + dr, int(c) + dc
                        if 0 <= rr < h16 and 0 <= cc < w16 and ((dr, dc) == (0, 0) or (rr, cc) not in taken):
                            idx.append(rr * w16 + cc)
                            lane.append(g)
            idx_t, lane_t = torch.tensor(idx), torch.tensor(lane)
            params = out["params"][b].flatten(1).t()[idx_t]  # [n, 2 (C + 3)]
            feats = out["features"][b].flatten(1)[None]  # [1, C, P]
            rx, ry = self.rx[idx_t][None], self.ry[idx_t][None]
            loc = dynamic_conv(params[None, :, :CONV_WEIGHTS], feats, rx, ry)[0].view(-1, h8, w8)
            off = dynamic_conv(params[None, :, CONV_WEIGHTS:], feats, rx, ry)[0].view(-1, h8, w8)
            target = torch.from_numpy(gx)[lane_t]  # [n, h8]
            valid = torch.isfinite(target)
            tx = torch.nan_to_num(target)
            # location: cross-entropy on the nearest column and L1 on the expected column, rows the lane covers
            near = tx.round().clamp(0, w8 - 1).long()
            ce = F.cross_entropy(loc.reshape(-1, w8), near.reshape(-1), reduction="none").view_as(tx)
            expected = (loc.softmax(-1) * cols).sum(-1)
            l_loc = l_loc + (ce * valid).sum()
            l_exp = l_exp + ((expected - tx).abs() * valid).sum()
            # offset: at the columns around the lane, the lane's x minus the column
            for d in (-1, 0, 1):
                col = (near + d).clamp(0, w8 - 1)
                o = off.gather(-1, col[..., None])[..., 0]
                l_off = l_off + ((o - (tx - col.float())).abs() * valid).sum()
            # range: the range head's output at these cells against the rows the lane covers
            rng = out["range"][b].flatten(1)[:, idx_t].t()  # [n, h8]
            l_rng = l_rng + F.binary_cross_entropy_with_logits(rng, valid.float(), reduction="sum")
            n_rows += int(valid.sum())
            n_inst += len(idx)
        if n_inst == 0:
            return focal
        return focal + (l_loc + 0.5 * l_exp + l_off / 3) / max(n_rows, 1) + l_rng / (n_inst * h8)
