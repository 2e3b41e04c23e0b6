"""Seeded random weights for models that ship none (the published architectures): shared by the tests'
oracles and the scripts that check a graph rather than accuracy."""
from __future__ import annotations

import torch


def randomize(module: torch.nn.Module, seed: int = 0, gain: float = 1.0) -> torch.nn.Module:
    """Seeded random weights and batch-norm statistics (so no layer is an identity), eval mode. ``gain``
    scales the weights' spread (below 1 keeps recurrent aggregations such as RESA's from growing without
    bound)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        stats = [(n, b) for n, b in module.named_buffers() if n.endswith(("running_mean", "running_var"))]
        for name, t in list(module.named_parameters()) + stats:
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif name.endswith("weight") and t.dim() == 1:  # norm scales
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            else:
                fan_in = t[0].numel() if t.dim() > 1 else t.numel()
                t.copy_(torch.randn(t.shape, generator=gen) * gain * (1.0 / fan_in) ** 0.5)
    module.eval()  # some references override eval() without returning the module
    return module


def in_layout(state, layout):
    """A state dict written as an implementation's checkpoint file holds it (``checkpoint.in_layout``)."""
    from ..models.published.checkpoint import in_layout as write

    return write(state, layout)
