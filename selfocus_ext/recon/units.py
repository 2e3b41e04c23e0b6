"""Reconstruction units: which modules are tuned together, and their cached inputs and targets.

A unit is a module called exactly once per forward pass: a single quantized layer (layer-wise), a residual
block or a module holding at most three quantized layers (block-wise). Layers a forward pass calls several
times (SCNN's message passing) cannot be reconstructed alone: the smallest once-called module around them
becomes the unit instead.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from ..quant.modules import QuantLayer

MAX_BLOCK_LAYERS = 3


@dataclass
class Unit:
    name: str
    module: nn.Module

    @property
    def layers(self) -> List[QuantLayer]:
        return [m for m in self.module.modules() if isinstance(m, QuantLayer)]


def _is_residual_block(module: nn.Module) -> bool:
    return type(module).__name__.endswith(("Block", "Bottleneck"))


@torch.no_grad()
def call_order(model: nn.Module, example: torch.Tensor) -> Tuple[Counter, Dict[nn.Module, int]]:
    """How often each module runs in one forward pass, and the order in which each first runs."""
    counts: Counter = Counter()
    first: Dict[nn.Module, int] = {}

    def pre(mod, args):
        counts[mod] += 1
        first.setdefault(mod, len(first))

    hooks = [m.register_forward_pre_hook(pre) for m in model.modules()]
    try:
        model(example)
    finally:
        for h in hooks:
            h.remove()
    return counts, first


def find_units(model: nn.Module, example: torch.Tensor, granularity: str) -> List[Unit]:
    """The units of ``granularity`` ("layer" or "block") in execution order."""
    if granularity not in ("layer", "block"):
        raise ValueError(f"granularity must be 'layer' or 'block', got {granularity!r}")
    counts, first = call_order(model, example)
    n_layers = {m: sum(isinstance(x, QuantLayer) for x in m.modules()) for m in model.modules()}

    def fits(mod: nn.Module) -> bool:
        if granularity == "layer":
            return isinstance(mod, QuantLayer)
        return _is_residual_block(mod) or n_layers[mod] <= MAX_BLOCK_LAYERS

    def visit(name: str, mod: nn.Module) -> List[Unit]:
        # containers that are never called themselves (ModuleList, ModuleDict) are looked into: their
        # layers may each run once (RESA's per-direction, per-iteration convolutions)
        if n_layers[mod] == 0:
            return []
        if counts[mod] == 1 and fits(mod):
            return [Unit(name, mod)]
        children = [(f"{name}.{c}" if name else c, m) for c, m in mod.named_children()]
        units = [u for c, m in children for u in visit(c, m)]
        covered = sum(len(u.layers) for u in units)
        if covered < n_layers[mod] and counts[mod] == 1:
            return [Unit(name or "<model>", mod)]  # some layers run repeatedly: tune them together
        return units

    units = visit("", model)
    if sum(len(u.layers) for u in units) != n_layers[model]:
        raise ValueError("find_units: some quantized layers run more than once per forward pass at every level")
    return sorted(units, key=lambda u: first[u.module])


class _Stop(Exception):
    pass


def cat_batches(chunks: List) -> object:
    flat = [tree_flatten(c) for c in chunks]
    spec = flat[0][1]
    leaves = [torch.cat([f[0][i] for f in flat]) if isinstance(flat[0][0][i], torch.Tensor) else flat[0][0][i]
              for i in range(len(flat[0][0]))]
    return tree_unflatten(leaves, spec)


@torch.no_grad()
def capture(model: nn.Module, unit: nn.Module, images: torch.Tensor, batch_size: int, want_output: bool,
            progress: Callable = lambda it: it) -> Tuple[tuple, object]:
    """Runs ``model`` over ``images`` and returns the unit's positional inputs (and output) for every image,
    concatenated along the batch; the forward pass stops as soon as the unit has been seen."""
    ins, outs = [], []

    def pre(mod, args):
        ins.append(tree_map(lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t, args))
        if not want_output:
            raise _Stop

    def post(mod, args, out):
        outs.append(tree_map(lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else t, out))
        raise _Stop

    h1 = unit.register_forward_pre_hook(pre)
    h2 = unit.register_forward_hook(post) if want_output else None
    try:
        for i in progress(range(0, len(images), batch_size)):
            try:
                model(images[i : i + batch_size])
            except _Stop:
                pass
    finally:
        h1.remove()
        if h2 is not None:
            h2.remove()
    return cat_batches(ins), (cat_batches(outs) if want_output else None)


def index(tree, idx: torch.Tensor):
    return tree_map(lambda t: t[idx] if isinstance(t, torch.Tensor) else t, tree)


def tree_nbytes(tree) -> int:
    return sum(t.numel() * t.element_size() for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor))
