"""The product of two activations (attention scores, attention-weighted values, dynamic convolutions) as a
module, so that quantization can put both operands on a grid (``QuantConfig.matmul_bits``); in float it is
the plain product."""
from __future__ import annotations

import torch
from torch import nn


class MatMul(nn.Module):
    """``a @ b`` (``op="matmul"``) or ``torch.bmm(a, b)`` (``op="bmm"``): the call the model made before, so
    its float results are unchanged."""

    def __init__(self, op: str = "matmul"):
        super().__init__()
        if op not in ("matmul", "bmm"):
            raise ValueError(f"MatMul: op must be 'matmul' or 'bmm', got {op!r}")
        self.op = op

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b) if self.op == "bmm" else a @ b

    def extra_repr(self) -> str:
        return self.op
