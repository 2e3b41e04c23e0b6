"""LSTR: curve lanes after LSTR (Liu et al. 2021), a small DETR-style transformer predicting whole lanes.

A reduced ResNet (widths 32, 64, 128, 256 -- the CULane setting, twice the TuSimple one -- blocks 1, 2, 2, 2
in the Small size, 2, 4, 6, 3 in the Mid one, stride 32) feeds a 1x1 projection to width 64 (Mid: 128) and a
transformer (2 encoder and 2 decoder layers, post-norm, 2 heads, feed-forward 4x the width, 2-D sine
positional encoding) with 7 lane queries. Per query: ``logits`` [B, 7, 2]
(lane / background; confidence, the lane column of a softmax) and ``curves`` [B, 7, 8] (semantic): the
upper and lower ends of the lane (normalised input y), then the curve
``x = k / (y - f)^2 + m / (y - f) + n + b y - b'`` in normalised input coordinates, where k, f, m, n are
shared by all lanes of an image (the mean over the queries of one small network's outputs) and b, b' are
the query's own.

Every linear layer (attention projections included) is an ``nn.Linear`` so that it is quantized like the
convolutions; the attention softmax and LayerNorm stay in float. Training matches queries to lanes per
image (scipy's Hungarian solver) with LSTR's cost and loss weights (class 3, curve points 5, lower end 2,
upper end 2) and the same losses on each intermediate decoder layer. Decoding: lane probability above 0.95,
the 4 most probable, the curve sampled on the frame's rows strictly between its ends and inside the image,
at least 2 points.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from ..layers import MatMul
from .backbone import BasicBlock, check_size, conv_bn
from ..decoders.lstr import sample_ys
from .base import HeadSpec, LaneModel
from .growth import copies_of_each, copies_within_heads, widen_rows, widen_weight
from .targets import slot_points, x_at

QUERIES = 7
SMALL_WIDTHS = (32, 32, 64, 128, 256)  # stem, then stages at strides 4, 8, 16, 32
SMALL_DEPTHS = (1, 2, 2, 2)
MID_DEPTHS = (2, 4, 6, 3)  # ResNet-18 -> ResNet-34 per stage (x1.5, x2, x3, x1.5)
MID_DIM = 128  # LSTR's larger configuration doubles the transformer width
COST = dict(cls=3.0, curve=5.0, lower=2.0, upper=2.0)
BACKGROUND_WEIGHT = 0.4  # class weight of "no lane" in the cross-entropy (most queries are background)


class ReducedResNet(nn.Module):
    """ResNet shape at reduced width: a stride-4 stem, then stages of basic blocks at strides 4..32."""

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS):
        super().__init__()
        check_size(widths, depths, 4)
        self.stem = nn.Sequential(conv_bn(3, widths[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths[1:], depths)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(*[BasicBlock(cin if j == 0 else w, w, stride if j == 0 else 1) for j in range(n)]))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = widths[-1]

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def sine_position(h: int, w: int, dim: int, temperature: float = 10000.0, normalize: bool = True) -> torch.Tensor:
    """[dim, h, w] 2-D sine encoding: the first half encodes the row, the second the column, each as
    interleaved sin/cos of the position (1-based; normalised to (0, 2 pi] unless ``normalize`` is False) at
    geometrically spaced frequencies."""
    half = dim // 2
    freq = temperature ** (2 * (torch.arange(half) // 2).float() / half)
    ys = torch.arange(1, h + 1, dtype=torch.float32)
    xs = torch.arange(1, w + 1, dtype=torch.float32)
    if normalize:
        ys, xs = ys / h * 2 * math.pi, xs / w * 2 * math.pi

    def encode(pos):  # [n] -> [n, half]
        a = pos[:, None] / freq[None, :]
        return torch.stack([a[:, 0::2].sin(), a[:, 1::2].cos()], -1).flatten(1)

    py = encode(ys)[:, None, :].expand(h, w, half)
    px = encode(xs)[None, :, :].expand(h, w, half)
    return torch.cat([py, px], -1).permute(2, 0, 1).contiguous()


def sine_units(dim: int) -> List[List[int]]:
    """Where each unit of a width-``dim`` transformer sits in the doubled width: unit ``c`` at two places, the
    first being where ``sine_position(.., 2 * dim)`` holds the very code ``sine_position(.., dim)`` gives unit
    ``c`` (the narrow code's frequencies are every other frequency of the wide one), so a widened layer that
    reads the first copies sees the narrow model's feature plus its own position code."""
    half, units = dim // 2, []
    for c in range(dim):
        part, k = divmod(c, half)  # row code, column code
        pair, trig = divmod(k, 2)  # frequency, sin / cos
        first = part * dim + 4 * pair + trig
        units.append([first, first + 2])
    return units


class Attention(nn.Module):
    """Multi-head scaled dot-product attention with separate q/k/v/out linear layers (quantizable)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.scores, self.mix = MatMul(), MatMul()  # q kᵀ and weights · v: products of two activations

    def forward(self, query, key, value):  # [B, Lq, D], [B, Lk, D], [B, Lk, D]
        B, Lq, D = query.shape
        Lk, h = key.shape[1], self.heads

        def split(t, L):
            return t.reshape(B, L, h, D // h).transpose(1, 2)

        q, k, v = split(self.q(query), Lq), split(self.k(key), Lk), split(self.v(value), Lk)
        weights = torch.softmax(self.scores(q, k.transpose(-1, -2)) / math.sqrt(D // h), dim=-1)
        return self.out(self.mix(weights, v).transpose(1, 2).reshape(B, Lq, D))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, dim))


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads, ff, dropout):
        super().__init__()
        self.attn, self.ff = Attention(dim, heads), FeedForward(dim, ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, src, pos):
        qk = src + pos
        src = self.norm1(src + self.drop(self.attn(qk, qk, src)))
        return self.norm2(src + self.drop(self.ff(src)))


class DecoderLayer(nn.Module):
    def __init__(self, dim, heads, ff, dropout):
        super().__init__()
        self.self_attn, self.cross_attn = Attention(dim, heads), Attention(dim, heads)
        self.ff = FeedForward(dim, ff, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt, memory, pos, query_pos):
        qk = tgt + query_pos
        tgt = self.norm1(tgt + self.drop(self.self_attn(qk, qk, tgt)))
        tgt = self.norm2(tgt + self.drop(self.cross_attn(tgt + query_pos, memory + pos, memory)))
        return self.norm3(tgt + self.drop(self.ff(tgt)))


class MLP(nn.Sequential):
    def __init__(self, dim: int, out: int, layers: int = 3):
        mods: List[nn.Module] = []
        for _ in range(layers - 1):
            mods += [nn.Linear(dim, dim), nn.ReLU(inplace=True)]
        super().__init__(*mods, nn.Linear(dim, out))


class LSTR(LaneModel):
    family = "curve"
    decoder_name = "lstr"
    head_layers = ["class_embed", "specific.4", "shared.4"]
    heads = [
        HeadSpec("logits", "logits", "confidence", conf_fn="softmax1"),
        HeadSpec("curves", "curves", "semantic", mask_from="logits"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, dim: int = 64,
                 heads: int = 2, ff: Optional[int] = None, enc_layers: int = 2, dec_layers: int = 2, dropout: float = 0.1, **kw):
        super().__init__(**kw)
        W, H = self.model_input.size
        self.backbone = ReducedResNet(widths, depths)
        self.input_proj = nn.Conv2d(self.backbone.out_channels, dim, 1)
        fh, fw = -(-H // 32), -(-W // 32)
        self.register_buffer("pos", sine_position(fh, fw, dim).flatten(1).t()[None], persistent=False)  # [1, fh*fw, D]
        self.query_embed = nn.Parameter(torch.randn(QUERIES, dim))
        ff = 4 * dim if ff is None else ff
        self.encoder = nn.ModuleList(EncoderLayer(dim, heads, ff, dropout) for _ in range(enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(dim, heads, ff, dropout) for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.class_embed = nn.Linear(dim, 2)
        self.specific = MLP(dim, 4)  # upper, lower, b, b'
        self.shared = MLP(dim, 4)  # k, f, m, n
        # start from sane curves: the pole f above the image, every lane a vertical line through the middle
        # spanning the lower half (training moves them; a pole inside the rows would start with inf x)
        with torch.no_grad():
            for head, bias in ((self.shared[-1], (0.0, -1.0, 0.0, 0.5)), (self.specific[-1], (0.5, 1.0, 0.0, 0.0))):
                head.weight.mul_(0.1)
                head.bias.copy_(torch.tensor(bias))
        self.sample_ys = sample_ys(self.model_input)  # the normalised input rows the decoder reads

    # ---- growing from the Small model --------------------------------------------------------------------
    def widen_from(self, small_state: Dict[str, torch.Tensor]) -> int:
        """Fills this model's transformer (width 2d) from a width-d one's tensors so that, in eval mode, it
        computes the same curves: every width-d unit is held by two units (``sine_units``), attention units
        twice within their own head (queries scaled by 1/sqrt(2) so the doubled dot products over the doubled head
        width give the same softmax), feed-forward units twice. Queries and keys read only the first copy of
        each unit, the one whose position code matches the narrow model's (the position code is added on top).
        The copies then separate in training (dropout, and the second copies' own position codes). Returns the
        number of tensors filled; 0 when the widths already agree."""
        d, D = small_state["input_proj.weight"].shape[0], self.input_proj.out_channels
        if d == D:
            return 0
        if D != 2 * d or d % 4:
            raise ValueError(f"small_state: a transformer of width {D} grows from width {D // 2} "
                             f"(a multiple of 4), got {d}")
        heads = self.encoder[0].attn.heads
        res, att = sine_units(d), copies_within_heads(d, heads)
        ff = copies_of_each(small_state["encoder.0.ff.0.weight"].shape[0])
        linear = {"input_proj": (res, copies_of_each(self.backbone.out_channels, 1), "split", 1.0),
                  "class_embed": (copies_of_each(2, 1), res, "split", 1.0)}
        norms = []
        for name, m in self.named_modules():
            if isinstance(m, Attention):
                linear[f"{name}.q"] = (att, res, "first", 2 ** -0.5)
                linear[f"{name}.k"] = (att, res, "first", 1.0)
                linear[f"{name}.v"] = (att, res, "split", 1.0)
                linear[f"{name}.out"] = (res, att, "split", 1.0)
            elif isinstance(m, FeedForward):
                linear[f"{name}.0"], linear[f"{name}.3"] = (ff, res, "split", 1.0), (res, ff, "split", 1.0)
            elif isinstance(m, MLP):
                *hidden, last = [i for i, layer in enumerate(m) if isinstance(layer, nn.Linear)]
                linear.update({f"{name}.{i}": (res, res, "split", 1.0) for i in hidden})
                linear[f"{name}.{last}"] = (copies_of_each(m[last].out_features, 1), res, "split", 1.0)
            elif isinstance(m, nn.LayerNorm):
                norms.append(name)
        wide = {"query_embed": widen_rows(small_state["query_embed"], res, dim=1)}
        for name, (rows, cols, read, scale) in linear.items():
            wide[f"{name}.weight"] = widen_weight(small_state[f"{name}.weight"], rows, cols, read) * scale
            wide[f"{name}.bias"] = widen_rows(small_state[f"{name}.bias"], rows) * scale
        for name in norms:
            for t in ("weight", "bias"):
                wide[f"{name}.{t}"] = widen_rows(small_state[f"{name}.{t}"], res)
        own, filled = self.state_dict(), 0
        for name, value in wide.items():
            if own[name].shape != value.shape:
                raise ValueError(f"small_state: widening {name} gave {tuple(value.shape)}, "
                                 f"this model has {tuple(own[name].shape)}")
            if small_state[name].shape != value.shape:  # equal shapes were copied as they are
                filled += 1
            with torch.no_grad():
                own[name].copy_(value)
        return filled

    def _heads(self, hs):
        specific, shared = self.specific(hs), self.shared(hs).mean(dim=-2, keepdim=True)
        curves = torch.cat([specific[..., :2], shared.expand_as(specific), specific[..., 2:]], -1)
        return self.class_embed(hs), curves

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.input_proj(self.backbone(x))
        B, D, fh, fw = f.shape
        src = f.flatten(2).transpose(1, 2)  # [B, fh*fw, D]
        pos = self.pos if self.pos.shape[1] == fh * fw else sine_position(fh, fw, D).to(f).flatten(1).t()[None]
        for layer in self.encoder:
            src = layer(src, pos)
        query_pos = self.query_embed[None].expand(B, -1, -1)
        tgt = torch.zeros_like(query_pos)
        inter = []
        for layer in self.decoder:
            tgt = layer(tgt, src, pos, query_pos)
            inter.append(tgt)
        if not self.training:
            logits, curves = self._heads(self.decoder_norm(tgt))
            return {"logits": logits, "curves": curves}
        logits, curves = self._heads(self.decoder_norm(torch.stack(inter)))  # [L, B, Q, ...]
        return {"logits": logits[-1], "curves": curves[-1], "aux_logits": logits[:-1], "aux_curves": curves[:-1]}

    # ---- training -----------------------------------------------------------------------------------
    def targets(self, slots: np.ndarray) -> Dict[str, object]:
        """Per image, [G, R] normalised GT x at the frame rows (NaN where the lane is absent) and [G, 2]
        (upper, lower) normalised y of its ends."""
        W, H = self.model_input.size
        rows = self.sample_ys * H
        xs, ends = [], []
        for b in range(slots.shape[0]):
            gx, ge = [], []
            for lane in slot_points(slots[b], self.model_input):
                if lane is None:
                    continue
                x = x_at(lane, rows) / W
                ok = np.isfinite(x)
                if ok.sum() < 2:
                    continue
                gx.append(x)
                ge.append([lane[:, 1].min() / H, lane[:, 1].max() / H])
            xs.append(np.array(gx, np.float32).reshape(-1, len(rows)))
            ends.append(np.array(ge, np.float32).reshape(-1, 2))
        return {"xs": xs, "ends": ends}

    def curve_x(self, curves: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """x of [..., 8] curves at normalised rows ys [R] -> [..., R]."""
        k, f, m, n, b, b2 = (curves[..., i:i + 1] for i in range(2, 8))
        d = ys - f
        return k / d ** 2 + m / d + n + b * ys - b2

    def _layer_loss(self, logits, curves, t):
        B, Q, _ = logits.shape
        ys = torch.from_numpy(self.sample_ys)
        label = torch.zeros(B, Q, dtype=torch.long)
        l_curve, l_ends, matched = logits.new_zeros(()), logits.new_zeros(()), 0
        prob = logits.detach().softmax(-1)[..., 1]
        for bi in range(B):
            gx = torch.from_numpy(t["xs"][bi])
            if len(gx) == 0:
                continue
            ge = torch.from_numpy(t["ends"][bi])
            valid = torch.isfinite(gx)
            # bounded so that a pole f among the rows gives a large, finite error rather than inf
            px = self.curve_x(curves[bi], ys).nan_to_num(0.0).clamp(-4.0, 5.0)  # [Q, R]
            with torch.no_grad():
                diff = (px[:, None, :] - torch.nan_to_num(gx)[None]).abs() * valid[None]
                c_curve = diff.sum(-1) / valid.sum(-1).clamp(min=1)[None]  # [Q, G]
                c_ends = (curves[bi, :, None, :2] - ge[None]).abs()  # [Q, G, 2]
                cost = (COST["curve"] * c_curve + COST["upper"] * c_ends[..., 0] + COST["lower"] * c_ends[..., 1]
                        - COST["cls"] * prob[bi][:, None])
                cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)
            qi, gi = linear_sum_assignment(cost.numpy())
            qi, gi = torch.as_tensor(qi), torch.as_tensor(gi)
            label[bi, qi] = 1
            v = valid[gi]
            err = (px[qi] - torch.nan_to_num(gx[gi])).abs() * v
            l_curve = l_curve + (err.sum(-1) / v.sum(-1).clamp(min=1)).sum()
            e = (curves[bi, qi, :2] - ge[gi]).abs()
            l_ends = l_ends + COST["upper"] * e[:, 0].sum() + COST["lower"] * e[:, 1].sum()
            matched += len(qi)
        ce = F.cross_entropy(logits.reshape(-1, 2), label.reshape(-1),
                             weight=torch.tensor([BACKGROUND_WEIGHT, 1.0]))
        return COST["cls"] * ce + (COST["curve"] * l_curve + l_ends) / max(matched, 1)

    def loss(self, out, t):
        total = self._layer_loss(out["logits"], out["curves"], t)
        for i in range(out.get("aux_logits", torch.empty(0)).shape[0]):
            total = total + self._layer_loss(out["aux_logits"][i], out["aux_curves"][i], t)
        return total
