"""Head activations the decoders and the models compute alike."""
from __future__ import annotations

import torch


def softmax_foreground(logits: torch.Tensor) -> torch.Tensor:
    """The foreground column of a 2-class softmax, as sigmoid(l1 - l0): the same function, one elementwise
    kernel instead of a softmax over a dimension of size 2 (ATen's slowest case). The C++ decoders compute
    it with the same expression and kernels."""
    return torch.sigmoid(logits[..., 1] - logits[..., 0])
