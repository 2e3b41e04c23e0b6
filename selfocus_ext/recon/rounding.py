"""AdaRound's rounding regulariser over a set of layers, with its warm-up and beta decay."""
from __future__ import annotations

from typing import Iterable

import torch

from ..ops import adaround_regularizer
from . import config


class RoundingSchedule:
    """No regulariser for the first ``warmup`` share of ``iters``; then beta decays linearly from ``start`` to
    ``end`` (AdaRound, BRECQ, QDrop)."""

    def __init__(self, iters: int, warmup: float = config.ROUND_WARMUP, start: float = config.BETA_START,
                 end: float = config.BETA_END, weight: float = config.ROUND_WEIGHT):
        self.iters, self.start_it = iters, int(warmup * iters)
        self.start, self.end, self.weight = start, end, weight

    def active(self, it: int) -> bool:
        return it >= self.start_it

    def beta(self, it: int) -> float:
        span = max(1, self.iters - self.start_it)
        t = min(1.0, max(0.0, (it - self.start_it) / span))
        return self.start + (self.end - self.start) * t

    def loss(self, layers: Iterable, it: int) -> torch.Tensor:
        if not self.active(it):
            return torch.zeros(())
        beta = self.beta(it)
        terms = [adaround_regularizer(l.weight_quantizer.v, beta) for l in layers if l.weight_quantizer.v is not None]
        return self.weight * sum(terms) if terms else torch.zeros(())


def cosine_lr(base: float, it: int, iters: int) -> float:
    """Cosine annealing from ``base`` to 0 over ``iters`` (QDrop's schedule for the step sizes)."""
    import math

    return 0.5 * base * (1.0 + math.cos(math.pi * min(it, iters) / max(1, iters)))
