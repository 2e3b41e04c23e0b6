"""Cost of a lane model: multiply-accumulates of one forward pass."""
from __future__ import annotations

import torch

from .base import LaneModel


def count_macs(model: LaneModel) -> int:
    """Multiply-accumulates of one forward pass at the model's input size: convolutions (deformable and
    transposed included) and linear layers; matrix products between activations (attention) are not counted."""
    from ..layers.deform import DeformConv1d, ModulatedDeformConv2d

    total = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        k = mod.weight[0].numel()  # in/groups * kernel
        total += int(out.numel() // out.shape[0] * k)

    def transposed_hook(mod, inp, out):
        nonlocal total
        total += int(inp[0].numel() // inp[0].shape[0] * mod.weight[0].numel())

    def lin_hook(mod, inp, out):
        nonlocal total
        total += int(out.numel() // out.shape[0] * mod.in_features)

    hooks = []
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, ModulatedDeformConv2d, DeformConv1d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(transposed_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    w, h = model.model_input.size
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))
    model.train(was_training)
    for hk in hooks:
        hk.remove()
    return total
