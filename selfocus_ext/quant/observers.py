"""Observers: from observed values to a symmetric clipping range, hence a scale (zero point 0).

A b-bit signed grid is [-2^(b-1), 2^(b-1) - 1] and an unsigned one [0, 2^b - 1]; the scale of a clipping
range c is c / qmax (qmax = 2^(b-1) - 1 signed, 2^b - 1 unsigned), so that +c is the top level exactly.
Per-channel observers reduce over every dimension but ``ch_axis`` and search all channels at once.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..ops import fake_quant

# ACIQ clipping factors (Banner et al. 2019) for a Laplace(b) prior: alpha = table[bits] * b.
ACIQ_LAPLACE = {2: 2.83, 3: 3.89, 4: 5.03, 5: 6.2, 6: 7.41, 7: 8.64, 8: 9.89}
ACIQ_LAPLACE_ONE_SIDED = {2: 3.89, 3: 5.02, 4: 6.2, 5: 7.41, 6: 8.64, 7: 9.89, 8: 11.16}
MIN_SCALE = 1e-8  # an all-zero channel keeps a tiny positive scale (its weights stay exactly 0)
# The weight calibration every tuning method starts from: "auto" (min-max at 4 bits or fewer, OMSE above;
# docs/quant.md says why, benchmarks/results/calibration-f1.md measures it). OMSE stays the "omse" baseline.
DEFAULT_WEIGHT_OBSERVER = "auto"
LOW_BITS = 4  # at this width or fewer, "auto" does not clip weights
DEFAULT_ACT_OBSERVER = "ema_mse"


def qmax(bits: int, signed: bool) -> int:
    return 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1


def check_bits(bits: int) -> int:
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an integer in 2..8, got {bits!r}")
    return bits


def check_finite(x: torch.Tensor, what: str) -> None:
    if x.numel() == 0:
        raise ValueError(f"{what}: no values to observe (empty tensor)")
    if not torch.is_floating_point(x):
        return
    # min and max in one pass: NaN propagates to both and an inf is one of them (an order of magnitude
    # cheaper than materialising isfinite)
    lo, hi = torch.aminmax(x)
    if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        raise ValueError(f"{what}: observed values contain NaN or inf")


def _channels_last(x: torch.Tensor, ch_axis: Optional[int]) -> torch.Tensor:
    """[C, N] view of x with the channel axis first (C = 1 per tensor)."""
    if ch_axis is None:
        return x.reshape(1, -1)
    return x.transpose(0, ch_axis).reshape(x.shape[ch_axis], -1)


class Observer:
    """Accumulates statistics of the tensors it sees; ``scale()`` returns the resulting scale tensor."""

    def __init__(self, bits: int, signed: bool, ch_axis: Optional[int] = None):
        self.bits = check_bits(bits)
        self.signed = signed
        self.ch_axis = ch_axis
        self.clip: Optional[torch.Tensor] = None

    def observe(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def scale(self) -> torch.Tensor:
        if self.clip is None:
            raise RuntimeError(f"{type(self).__name__}: no data observed; calibration needs at least one batch")
        return (self.clip / qmax(self.bits, self.signed)).clamp(min=MIN_SCALE)


class MinMaxObserver(Observer):
    """Clip at the largest magnitude seen."""

    def observe(self, x):
        check_finite(x, "MinMaxObserver")
        m = _channels_last(x.detach().float(), self.ch_axis).abs().amax(dim=1)
        self.clip = m if self.clip is None else torch.maximum(self.clip, m)


class ACIQObserver(Observer):
    """ACIQ with a Laplace prior: clip = table[bits] * b, b = mean |x - mean(x)|; unsigned (post-ReLU)
    tensors use the one-sided table. Statistics are averaged over the observed batches."""

    def __init__(self, bits, signed, ch_axis=None):
        super().__init__(bits, signed, ch_axis)
        self._b_sum, self._n = None, 0

    def observe(self, x):
        check_finite(x, "ACIQObserver")
        v = _channels_last(x.detach().float(), self.ch_axis)
        b = (v - v.mean(dim=1, keepdim=True)).abs().mean(dim=1)
        self._b_sum = b if self._b_sum is None else self._b_sum + b
        self._n += 1
        table = ACIQ_LAPLACE if self.signed else ACIQ_LAPLACE_ONE_SIDED
        self.clip = table[self.bits] * (self._b_sum / self._n)


def mse_search(v: torch.Tensor, bits: int, signed: bool, candidates: int = 100, p: float = 2.0,
               shrink_step: float = 0.01, max_samples: int = 1 << 17) -> torch.Tensor:
    """Per row of v [C, N]: the clip among max|v| * (1 - shrink_step * i), i < candidates, minimising
    mean |v - Q(v)|^p. All rows and candidates are evaluated together (no per-channel loop). Rows longer
    than ``max_samples`` are measured on an evenly strided subset (the grid still uses the true max)."""
    maxabs = v.abs().amax(dim=1).clamp(min=MIN_SCALE)  # [C]
    if v.shape[1] > max_samples:
        v = v[:, :: -(-v.shape[1] // max_samples)]
    factors = 1.0 - shrink_step * torch.arange(candidates, dtype=v.dtype, device=v.device)
    factors = factors[factors > 0]
    clips = maxabs[None, :] * factors[:, None]  # [K, C]
    scales = (clips / qmax(bits, signed)).clamp(min=MIN_SCALE)
    K, C = clips.shape
    N = v.shape[1]
    err = torch.empty(K, C, dtype=v.dtype, device=v.device)
    # candidates in cache-sized blocks (about 256K values each), every channel at once: one fused
    # fake-quant per block
    block = max(1, (1 << 18) // max(1, C * N))
    for k0 in range(0, K, block):
        k1 = min(K, k0 + block)
        xq = fake_quant(v[None].expand(k1 - k0, C, N).reshape((k1 - k0) * C, N), scales[k0:k1].reshape(-1),
                        bits, signed, 0).reshape(k1 - k0, C, N)
        d = xq.sub_(v[None])  # in place: the block's one buffer serves for the differences and their powers
        # |d|^2 is d*d exactly (torch's pow(2) multiplies), so p = 2 needs no abs
        err[k0:k1] = (d.square_() if p == 2.0 else d.abs_().pow_(p)).mean(dim=2)
    best = err.argmin(dim=0)
    return clips[best, torch.arange(C, device=clips.device)]


class MSEObserver(Observer):
    """OMSE: the clip minimising the L_p quantization error over a grid of shrink factors of max |x|
    (p = 2.0 by default), per channel when ch_axis is set. Used for weights (one observation)."""

    def __init__(self, bits, signed, ch_axis=None, candidates: int = 100, p: float = 2.0):
        super().__init__(bits, signed, ch_axis)
        self.candidates, self.p = candidates, p

    def observe(self, x):
        check_finite(x, "MSEObserver")
        v = _channels_last(x.detach().float(), self.ch_axis)
        self.clip = mse_search(v, self.bits, self.signed, self.candidates, self.p)


class EMAMSEObserver(MSEObserver):
    """The MSE search per batch, the clip kept as an exponential moving average (ratio 0.9)."""

    def __init__(self, bits, signed, ch_axis=None, candidates: int = 100, p: float = 2.0, ratio: float = 0.9):
        super().__init__(bits, signed, ch_axis, candidates, p)
        self.ratio = ratio

    def observe(self, x):
        check_finite(x, "EMAMSEObserver")
        v = _channels_last(x.detach().float(), self.ch_axis)
        clip = mse_search(v, self.bits, self.signed, self.candidates, self.p)
        self.clip = clip if self.clip is None else self.ratio * self.clip + (1 - self.ratio) * clip


class LpObserver(MSEObserver):
    """The clip search of OMSE with the error measured as mean |x - Q(x)|^4: large errors, hence clipping,
    cost more than under p = 2."""

    def __init__(self, bits, signed, ch_axis=None, candidates: int = 100):
        super().__init__(bits, signed, ch_axis, candidates, p=4.0)


def auto_weight_observer(bits: int, signed: bool, ch_axis: Optional[int] = None) -> Observer:
    """The default weight calibration: no clipping (min-max) at LOW_BITS bits or fewer, OMSE above. At 4 bits
    OMSE's clipping lowers every layer's weight error yet costs the network up to 13.5 F1 (the errors it
    trades for, on each channel's largest weights, compound over the layers); at 8 bits the two tie."""
    if check_bits(bits) <= LOW_BITS:
        return MinMaxObserver(bits, signed, ch_axis)
    return MSEObserver(bits, signed, ch_axis)


OBSERVERS = {"minmax": MinMaxObserver, "aciq": ACIQObserver, "omse": MSEObserver, "mse": MSEObserver,
             "ema_mse": EMAMSEObserver, "lp4": LpObserver, "auto": auto_weight_observer}


def make_observer(name: str, bits: int, signed: bool, ch_axis: Optional[int] = None) -> Observer:
    try:
        return OBSERVERS[name](bits, signed, ch_axis)
    except KeyError:
        raise ValueError(f"unknown observer {name!r}; expected one of {sorted(OBSERVERS)}") from None
