"""BezierLaneNet: curve lanes after BezierLaneNet (Feng et al. 2022).

Stride-16 features are averaged over height into Q column queries (a learned weighting over the height);
1-D convolutions predict per query an existence logit ``logits`` [B, Q] (confidence) and cubic Bezier control points ``curves`` [B, Q, 4, 2]
(semantic, normalised input coordinates). Training matches queries to ground-truth curves one to one
(Hungarian, on the distance of sampled curve points, existence, and a prior toward the lane's mean column)
and regresses the sampled points. Decoding: existence threshold, 1-D local maximum
over neighbouring queries, Bernstein sampling of each kept curve. The window is 5 queries: the original's 9
queries at 50 queries per 800 px cover the same share of the image width as 5 of our 25 queries per 400 px.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..lanes.distortion import max_weight_matching
from ..decoders.bezier import bernstein
from .backbone import SMALL_DEPTHS, SMALL_WIDTHS, SmallResNet, conv_bn
from .base import HeadSpec, LaneModel
from .targets import slot_points

def fit_bezier(points: np.ndarray) -> np.ndarray:
    """Least-squares cubic Bezier (4 x 2 control points) through points, parameterised by chord length."""
    d = np.r_[0.0, np.cumsum(np.hypot(*np.diff(points, axis=0).T))]
    t = d / d[-1] if d[-1] > 0 else np.linspace(0, 1, len(points))
    A = bernstein(t)
    ctrl, *_ = np.linalg.lstsq(A, points.astype(np.float64), rcond=None)
    return ctrl.astype(np.float32)


def gt_bezier_curves(slots: np.ndarray, model_input) -> List[np.ndarray]:
    """[B, 4, R] frame x values by slot -> per image the fitted control points [G, 4, 2] of its lanes in
    normalised input coordinates (x / width, y / height)."""
    W, H = model_input.size
    out = []
    for b in range(slots.shape[0]):
        curves = [fit_bezier(p / np.array([W, H], np.float32)) for p in slot_points(slots[b], model_input)
                  if p is not None]
        out.append(np.stack(curves) if curves else np.zeros((0, 4, 2), np.float32))
    return out


class BezierLaneNet(LaneModel):
    family = "curve"
    decoder_name = "bezier"
    head_layers = ["exist", "curve"]
    heads = [
        HeadSpec("logits", "logits", "confidence", conf_fn="sigmoid"),
        HeadSpec("curves", "curves", "semantic", mask_from="logits"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, **kw):
        super().__init__(**kw)
        self.backbone = SmallResNet(widths, depths)
        c = self.backbone.out_channels["s16"]
        self.pre = conv_bn(c, 64, 3)
        # collapses the height with a learned weighting (keeps where along the height features are)
        self.collapse = nn.Sequential(nn.Conv2d(64, 64, (self.model_input.size[1] // 16, 1), bias=False),
                                      nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.columns = nn.Sequential(
            nn.Conv1d(64, 64, 3, padding=1), nn.BatchNorm1d(64), nn.ReLU(inplace=True),
            nn.Conv1d(64, 64, 3, padding=1), nn.BatchNorm1d(64), nn.ReLU(inplace=True))
        self.exist = nn.Conv1d(64, 1, 1)
        self.curve = nn.Conv1d(64, 8, 1)
        self.queries = self.model_input.size[0] // 16
        nn.init.constant_(self.exist.bias, -2.0)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.collapse(self.pre(self.backbone(x)["s16"]))[:, :, 0]  # [B, 64, Q]
        h = self.columns(f)
        B, _, Q = h.shape
        # curves as offsets from each query's column so that queries specialise by position
        base = (torch.arange(Q, dtype=h.dtype, device=h.device) + 0.5) / Q
        curves = self.curve(h).permute(0, 2, 1).reshape(B, Q, 4, 2)
        curves = curves + torch.stack([base[None, :, None].expand(B, Q, 4), torch.zeros(B, Q, 4, device=h.device)], -1)
        return {"logits": self.exist(h)[:, 0], "curves": curves}

    # ---- training -----------------------------------------------------------------------------------
    def gt_curves(self, slots: np.ndarray) -> List[np.ndarray]:
        return gt_bezier_curves(slots, self.model_input)

    def targets(self, slots: np.ndarray) -> Dict[str, object]:
        return {"curves": self.gt_curves(slots)}

    def loss(self, out, t):
        return bezier_set_loss(out["logits"], out["curves"], t["curves"])


def bezier_set_loss(logits: torch.Tensor, curves: torch.Tensor, gt_curves: List[np.ndarray]) -> torch.Tensor:
    """Set loss of Bezier-curve queries: existence logits [B, Q] and control points [B, Q, 4, 2]
    (normalised input coordinates) against each image's ground-truth control points [G, 4, 2]. Queries are
    matched to lanes one to one (Hungarian, on the distance of 20 sampled curve points, a prior toward the
    lane's mean column and the current existence); matched queries regress the sampled points and the control
    points, and every query's existence is a binary target (positives weighted 4)."""
    B, Q = logits.shape
    target = torch.zeros_like(logits)
    l_curve = logits.new_zeros(())
    matched = 0
    basis = torch.from_numpy(bernstein(np.linspace(0, 1, 20)).astype(np.float32)).to(curves)  # [20, 4]
    centres = (torch.arange(Q, dtype=curves.dtype, device=curves.device) + 0.5) / Q
    with torch.no_grad():
        prob = torch.sigmoid(logits)
    for b in range(B):
        gt = torch.from_numpy(gt_curves[b]).to(curves)
        if len(gt) == 0:
            continue
        gt_pts = basis @ gt  # [G, 20, 2]
        pred_pts = basis @ curves[b]  # [Q, 20, 2]
        cost = (pred_pts.detach()[None] - gt_pts[:, None]).abs().mean(dim=(2, 3))  # [G, Q]
        # a positional prior keeps each lane on the queries around its mean column, so that the
        # decoder's local maximum separates lanes
        where = (gt_pts[:, :, 0].mean(1)[:, None] - centres[None]).abs()
        weight = -(cost * 5.0 + where * 2.0) + prob[b][None]
        match = max_weight_matching(weight - weight.min())
        for g, q in enumerate(match.tolist()):
            if q < 0:
                continue
            target[b, q] = 1.0
            l_curve = l_curve + (pred_pts[q] - gt_pts[g]).abs().mean() + 0.5 * (curves[b, q] - gt[g]).abs().mean()
            matched += 1
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(4.0, device=logits.device))
    return bce + 5.0 * l_curve / max(matched, 1)
