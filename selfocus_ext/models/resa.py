"""RESA: segmentation lanes after RESA (Zheng et al. 2021), the recurrent feature-shift aggregator.

SCNN-S with its sequential slice-by-slice message passing replaced by RESA's aggregator: K iterations of
whole-map shifts in four directions, each shifted copy convolved (bias-free, its own convolution per
direction and iteration) and added back, ``x = x + alpha * relu(conv(shift(x)))``. The heads, their roles
and the decoding are SCNN-S's (the same C++ decoder): ``out`` [B, 5, h, w] per-lane segmentation logits
(semantic: the peak position) and ``lane`` [B, 4] existence logits (confidence).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .scnn import SCNN

ITERATIONS = 5  # the CULane Small/Mid settings of the public implementations
ALPHA = 2.0


class RecurrentShift(nn.Module):
    """RESA's aggregator. For direction d in (down, up) then (right, left) and iteration i < K, the map is
    shifted circularly by n // 2^(K - i) rows (columns) — row r reads row r + shift going down, r - shift
    going up — and convolved across the other axis (1 x k kernels for rows, k x 1 for columns)."""

    DIRECTIONS = (("down", 2, -1), ("up", 2, 1), ("right", 3, -1), ("left", 3, 1))  # name, axis, roll sign

    def __init__(self, channels: int, iterations: int = ITERATIONS, alpha: float = ALPHA, k: int = 9):
        super().__init__()
        self.iterations, self.alpha = iterations, alpha

        def conv(axis: int) -> nn.Conv2d:
            kernel, pad = ((1, k), (0, k // 2)) if axis == 2 else ((k, 1), (k // 2, 0))
            return nn.Conv2d(channels, channels, kernel, padding=pad, bias=False)

        self.convs = nn.ModuleDict({name: nn.ModuleList(conv(axis) for _ in range(iterations))
                                    for name, axis, _ in self.DIRECTIONS})

    def forward(self, x):
        for name, axis, sign in self.DIRECTIONS:
            n = x.shape[axis]
            for i, conv in enumerate(self.convs[name]):
                shifted = x.roll(sign * (n // 2 ** (self.iterations - i)), dims=axis)
                x = x + self.alpha * F.relu(conv(shifted))
        return x


class RESA(SCNN):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.mp = RecurrentShift(32)
