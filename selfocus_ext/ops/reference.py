"""Plain-torch reference implementations of the fused ops: the readable specification.

Each function computes what the corresponding ``selfocus_ext.ops`` function computes, with ordinary torch
operations and autograd (gradients come from the straight-through constructions below). The tests
compare the fused ops against these on random and constructed inputs.

Conventions shared with the kernels:
  * ``x / s`` is ``x * reciprocal(s)`` with the reciprocal rounded to float32 (PyTorch's fake-quant does
    the same, which makes 8-bit results equal to ``torch.fake_quantize_per_*_affine``).
  * ``torch.round`` rounds half to even, like ``nearbyint``.
  * Range tests use the rounded value with inclusive bounds.
  * ``a.detach() + (b - b.detach()) * m`` has exactly the value ``a`` and the gradient ``m`` w.r.t. ``b``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

ZETA = 1.1
GAMMA = -0.1
MASK32 = 0xFFFFFFFF


def int_range(bits: int, signed: bool) -> Tuple[int, int]:
    """The integer grid ``[qmin, qmax]`` of a symmetric quantizer with zero point 0."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _channel_view(scale: torch.Tensor, x: torch.Tensor, ch_axis: Optional[int]) -> torch.Tensor:
    s = scale.to(torch.float32)
    if ch_axis is None:
        return s.reshape(())
    axis = ch_axis % x.dim()
    shape = [1] * x.dim()
    shape[axis] = -1
    return s.reshape(shape)


def _straight_through(value: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return value.detach() + (x - x.detach()) * mask


def fake_quant(x, scale, bits, signed=True, ch_axis=None):
    """Round-to-nearest fake quant; gradient 1 where the rounded value is inside the range, else 0."""
    lo, hi = int_range(bits, signed)
    s = _channel_view(torch.as_tensor(scale, device=x.device), x, ch_axis)
    q = torch.round(x * torch.reciprocal(s))
    inside = (q >= lo) & (q <= hi)
    return _straight_through(torch.clamp(q, lo, hi) * s, x, inside)


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    """AdaRound's h(v) = clamp(sigmoid(v) * (zeta - gamma) + gamma, 0, 1)."""
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def _out_channel_view(scale: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return scale.to(torch.float32).reshape([-1] + [1] * (w.dim() - 1))


def adaround_quant(w, v, scale, bits, hard=False):
    """AdaRound soft (rectified sigmoid) or hard (v >= 0) rounding of w, per output channel."""
    lo, hi = int_range(bits, True)
    s = _out_channel_view(scale, w)
    base = torch.floor(w.detach() * torch.reciprocal(s))
    h = (v >= 0).to(w.dtype) if hard else rectified_sigmoid(v)
    return torch.clamp(base + h, lo, hi) * s


def adaround_quant_ste(w, v, scale, bits):
    """The hard rounding's value with the soft rounding's gradient in v (straight-through)."""
    soft = adaround_quant(w, v, scale, bits)
    hard = adaround_quant(w, v.detach(), scale, bits, hard=True)
    return hard + (soft - soft.detach())


def adaround_init(w, scale, bits):
    """v with h(v) = frac(w / s): v = -log((zeta - gamma) / (rest - gamma) - 1)."""
    s = _out_channel_view(scale, w)
    t = w * torch.reciprocal(s)
    rest = t - torch.floor(t)
    return -torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)


def adaround_regularizer(v, beta):
    """sum(1 - |2 h(v) - 1| ** beta)."""
    return (1 - (2 * rectified_sigmoid(v) - 1).abs().pow(beta)).sum()


def philox4x32_10(c0, c1, c2, c3, k0: int, k1: int):
    """Philox4x32-10 on int64 tensors holding 32-bit words (products wrap modulo 2^64, which keeps both
    halves of the 64-bit product exact)."""
    for rnd in range(10):
        if rnd:
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        p0 = c0 * 0xD2511F53
        p1 = c2 * 0xCD9E8D57
        hi0, lo0 = (p0 >> 32) & MASK32, p0 & MASK32
        hi1, lo1 = (p1 >> 32) & MASK32, p1 & MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def qdrop_mask(shape, keep_prob: float, seed: int, device=None) -> torch.Tensor:
    """QDrop's keep mask: element i is quantized iff (word_i >> 8) * 2^-24 < keep_prob, where word_i is
    word i % 4 of Philox4x32-10 with counter (i // 4, 0) and key = the 64-bit seed."""
    n = 1
    for d in shape:
        n *= int(d)
    groups = torch.arange((n + 3) // 4, dtype=torch.int64, device=device)
    zero = torch.zeros_like(groups)
    seed &= 0xFFFFFFFFFFFFFFFF
    words = philox4x32_10(groups & MASK32, groups >> 32, zero, zero, seed & MASK32, seed >> 32)
    word = torch.stack(words, dim=1).reshape(-1)[:n]
    u = (word >> 8).to(torch.float32) * 2.0**-24
    return (u < torch.tensor(keep_prob, dtype=torch.float32, device=device)).reshape(tuple(shape))


def act_quant(x, step, bits, signed, keep_prob=1.0, seed=0, grad_scale=1.0):
    """LSQ fake quant with a learnable step and QDrop's random pass-through.

    The step's gradient is LSQ's (round(x/s) - x/s inside the range, qmin/qmax outside) times
    grad_scale; x's gradient is straight-through inside the range, and 1 where the element was dropped.
    """
    lo, hi = int_range(bits, signed)
    step = torch.as_tensor(step, device=x.device)
    s = step.to(torch.float32).reshape(())
    s_eff = _straight_through(s, s, torch.tensor(grad_scale, dtype=torch.float32))
    t = x * torch.reciprocal(s_eff)
    q = t + (torch.round(t) - t).detach()
    yq = torch.clamp(q, lo, hi) * s_eff
    if keep_prob >= 1.0:
        return yq
    keep = qdrop_mask(x.shape, keep_prob, seed, device=x.device)
    return torch.where(keep, yq, x)


def line_nms(proposals: torch.Tensor, scores: torch.Tensor, threshold: float, top_k: int,
             layout: Tuple[int, int, int] = (0, 1, 2)) -> torch.Tensor:
    """Line suppression of anchor proposals (start, length, x_0 .. x_{n-1} at the ``layout`` positions;
    csrc/core/line_nms.h): visited by
    descending score (stable), a proposal is kept unless a kept one lies closer than ``threshold`` pixels on
    average over the rows both cover. The published kernel's arithmetic: float products and sums, + 0.5 in
    double, truncation, the end row lowered by one when the third offset is below 1, distances summed in
    float32 from the bottom row. A start or end that is NaN or beyond the rows by more than their count, or a
    start before the proposal's first field, is no overlap (the kernel's behaviour is undefined there)."""
    p = proposals.detach().float().cpu()
    si, li, xi = layout
    n_offsets = p.shape[1] - xi
    order = torch.sort(scores.detach().cpu(), descending=True, stable=True).indices
    limit = 2 * n_offsets + 2  # a start or end beyond the rows by more than this (or NaN): no overlap
    start_v = (p[:, si] * float(n_offsets - 1)).double() + 0.5
    start_ok = (start_v >= -limit) & (start_v <= limit)
    start = torch.where(start_ok, start_v, 0.0).long()
    end_v = ((start.float() + p[:, li]) - 1.0).double() + 0.5 - ((p[:, 4] - 1.0) < 0).double()
    end_ok = (end_v >= -limit) & (end_v <= limit)
    end = torch.where(end_ok, end_v, 0.0).long()
    thr = torch.tensor(threshold, dtype=torch.float32)

    def overlap(a: int, b: int) -> bool:
        if not (start_ok[a] and start_ok[b] and end_ok[a] and end_ok[b]):
            return False
        lo = int(max(start[a], start[b]))
        if lo < -xi:  # the kernel reads the fields before the xs, not before the proposal
            return False
        hi = min(int(end[a]), int(end[b]), n_offsets - 1)
        if hi < lo:
            return False
        dist = torch.zeros((), dtype=torch.float32)
        for i in range(xi + lo, xi + hi + 1):
            dist = dist + (p[a, i] - p[b, i]).abs()
        return bool(dist < thr * float(hi - lo + 1))

    keep = []
    for i in order.tolist():
        if len(keep) >= top_k:
            break
        if not any(overlap(k, i) for k in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


def deform_conv2d(input, offset, mask, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                  offset_groups=1):
    """Modulated deformable convolution (DCNv2; csrc/core/deform_conv.h): every kernel tap reads the input
    bilinearly at its offset position (corners outside the image read 0) and is scaled by its mask, then a
    grouped convolution of those samples. Differentiable in every tensor argument."""
    B, C, H, W = input.shape
    Co, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = (tuple(stride), tuple(padding), tuple(dilation))
    Ho, Wo = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    kk, og = kh * kw, offset_groups
    i = torch.arange(kh, device=input.device).repeat_interleave(kw)
    j = torch.arange(kw, device=input.device).repeat(kh)
    base_y = (torch.arange(Ho, device=input.device)[None, :, None] * sh - ph + i[:, None, None] * dh).float()
    base_x = (torch.arange(Wo, device=input.device)[None, None, :] * sw - pw + j[:, None, None] * dw).float()
    off = offset.reshape(B, og, kk, 2, Ho, Wo)
    y, x = base_y + off[:, :, :, 0], base_x + off[:, :, :, 1]  # [B, og, kk, Ho, Wo]
    y0, x0 = torch.floor(y), torch.floor(x)
    ly, lx = y - y0, x - x0
    planes = input.reshape(B, og, C // og, H * W)
    sample = 0
    for cy, cx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx), (y0 + 1, x0, ly * (1 - lx)),
                        (y0 + 1, x0 + 1, ly * lx)):
        inside = (cy >= 0) & (cy <= H - 1) & (cx >= 0) & (cx <= W - 1)
        idx = (cy.clamp(0, H - 1) * W + cx.clamp(0, W - 1)).long().reshape(B, og, 1, -1)
        vals = torch.gather(planes, 3, idx.expand(B, og, C // og, idx.shape[-1])).reshape(B, og, C // og, kk, Ho, Wo)
        sample = sample + vals * (wgt * inside)[:, :, None]
    sample = sample * mask.reshape(B, og, 1, kk, Ho, Wo)
    cols = sample.reshape(B, groups, (C // groups) * kk, Ho * Wo)
    out = torch.matmul(weight.reshape(groups, Co // groups, -1), cols).reshape(B, Co, Ho, Wo)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)
