"""The tuning loops' optimiser."""
from __future__ import annotations

from typing import List

import torch


def adam(groups: List[dict]) -> torch.optim.Adam:
    """Adam over ``groups``, on torch's fused kernel where every parameter allows it (float32 or bfloat16 on
    the CPU or CUDA): one pass over all tensors instead of a Python loop of element-wise ops per tensor.
    Results agree with the loop implementation to float rounding; the state dict is the same either way, so
    checkpoints load into both."""
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.bfloat16)
                                 for p in params)
    return torch.optim.Adam(groups, fused=fused or None)
