"""Starting a larger zoo model from a smaller one's weights (a deeper backbone, the same heads)."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from .backbone import BasicBlock


def _as_first_of_a_stage(name: str):
    """Where a one-block stage (a bare block) became a sequence, its tensors moved under ``.0``:
    ``backbone.layer1.conv1.0.weight`` -> ``backbone.layer1.0.conv1.0.weight`` and the other insertions."""
    parts = name.split(".")
    return [".".join(parts[:i] + ["0"] + parts[i:]) for i in range(1, len(parts)) if not parts[i].isdigit()]


@torch.no_grad()
def grow_from(model: nn.Module, small_state: Dict[str, torch.Tensor]) -> Tuple[int, int]:
    """Copies each tensor of ``small_state`` whose name and shape match into ``model``; every residual block of
    ``model`` that did not receive all its tensors starts as an identity (its last BatchNorm scale zeroed), so
    the deeper network computes what the smaller one does wherever the rest matched. Returns (copied, fresh)
    tensor counts."""
    own = model.state_dict()
    take = {}
    for k, v in small_state.items():
        for name in [k] + _as_first_of_a_stage(k):
            if name in own and own[name].shape == v.shape:
                take[name] = v
                break
    model.load_state_dict(take, strict=False)
    for name, block in model.named_modules():
        if isinstance(block, BasicBlock) and any(f"{name}.{k}" not in take for k in block.state_dict()):
            nn.init.zeros_(block.conv2[1].weight)
    return len(take), len(own) - len(take)
