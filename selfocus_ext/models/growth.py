"""Starting a larger zoo model from a smaller one's weights: a deeper backbone (the added residual blocks start
as identities) and, where a model defines ``widen_from``, wider layers whose copied units compute what the
narrow ones did (Net2Net-style widening), so the grown model starts from the smaller one's accuracy."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

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
    the deeper network computes what the smaller one does wherever the rest matched; a model with a
    ``widen_from(small_state) -> count`` method then fills its wider tensors from the narrow ones. Returns
    (copied or widened, fresh) tensor counts."""
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
    widened = model.widen_from(small_state) if hasattr(model, "widen_from") else 0
    return len(take) + widened, len(own) - len(take) - widened


# ---- widening: a wider layer computing what the narrower one did (each unit held by several copies) ----------


def copies_of_each(n: int, times: int = 2) -> List[List[int]]:
    """Unit ``u`` of ``n`` held at ``u, u + n, ...`` of ``times * n``."""
    return [[u + t * n for t in range(times)] for u in range(n)]


def copies_within_heads(dim: int, heads: int) -> List[List[int]]:
    """Attention projections: unit ``r`` of head ``h`` (``dim // heads`` per head) held twice inside the same
    head of the doubled width, so that the widened heads attend as the narrow ones did."""
    hd = dim // heads
    return [[h * 2 * hd + r, h * 2 * hd + hd + r] for h in range(heads) for r in range(hd)]


def _sources(groups: Sequence[Sequence[int]]) -> torch.Tensor:
    src = torch.empty(sum(len(g) for g in groups), dtype=torch.long)
    for u, g in enumerate(groups):
        src[list(g)] = u
    return src


def widen_rows(t: torch.Tensor, rows: Sequence[Sequence[int]], dim: int = 0) -> torch.Tensor:
    """Every copy of unit ``u`` along ``dim`` gets ``t``'s entry ``u`` (biases, norms, output rows)."""
    return t.index_select(dim, _sources(rows))


def widen_weight(w: torch.Tensor, rows: Sequence[Sequence[int]], cols: Sequence[Sequence[int]],
                 read: str = "split") -> torch.Tensor:
    """[O, I, *k] -> the wide [O', I', *k] whose output copies of unit ``o`` equal the narrow output ``o`` when
    every input copy of unit ``c`` holds input ``c``: ``read="split"`` shares each input's weight evenly among its
    copies, ``read="first"`` reads the first copy alone (for inputs whose other copies carry something else,
    e.g. a position code added on top)."""
    if read not in ("split", "first"):
        raise ValueError(f"read: expected 'split' or 'first', got {read!r}")
    wide = widen_rows(w, rows, 0).index_select(1, _sources(cols))
    share = torch.zeros(wide.shape[1], dtype=w.dtype)
    for g in cols:
        if read == "split":
            share[list(g)] = 1.0 / len(g)
        else:
            share[g[0]] = 1.0
    return wide * share.view(1, -1, *([1] * (w.dim() - 2)))
