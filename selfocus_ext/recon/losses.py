"""Reconstruction losses: the references' squared error and Selective Focus's Semantic Guided Focus (Eq. 6)."""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import torch
from torch.utils._pytree import tree_leaves


def squared_error(pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(w * (pred - target))^2`` summed over dim 1 (channels) and averaged over the rest, as the reference
    implementations reduce their reconstruction loss; a 1-D output is averaged."""
    if pred.shape != target.shape:
        raise ValueError(f"squared_error: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    d = pred - target
    if weight is not None:
        d = weight * d
    d = d.pow(2)
    return d.sum(1).mean() if d.dim() >= 2 else d.mean()


def tree_squared_error(pred, target) -> torch.Tensor:
    """Sum of ``squared_error`` over matching leaves of two outputs (tensor, tuple or dict)."""
    p, t = tree_leaves(pred), tree_leaves(target)
    if len(p) != len(t):
        raise ValueError(f"tree_squared_error: {len(p)} outputs against {len(t)} targets")
    return sum(squared_error(a, b) for a, b in zip(p, t))


def head_losses(model, q_out: Dict[str, torch.Tensor], fp_out: Dict[str, torch.Tensor], heads: Iterable[str],
                focus: bool, lam: float) -> Dict[str, torch.Tensor]:
    """Per-head terms of the network-wise loss. With ``focus`` (Semantic Guided Focus, paper Eq. 6): a
    semantic head contributes ``||C_fp * (S_q - S_fp)||^2`` with ``C_fp`` the FP probability of its
    ``mask_from`` head, a confidence head ``lam * ||C_q - C_fp||^2`` on its raw output. Without focus every
    head contributes its plain squared error."""
    out = {}
    for name in heads:
        spec = model.head(name)
        q, fp = q_out[spec.output_key], fp_out[spec.output_key]
        if not focus:
            out[name] = squared_error(q, fp)
        elif spec.role == "semantic":
            mask = model.confidence_mask(name, fp_out).detach()
            out[name] = squared_error(q, fp, mask)
        else:
            out[name] = lam * squared_error(q, fp)
    return out


def selective_focus_loss(model, q_out, fp_out, heads, focus: bool = True, lam: float = 2.0) -> torch.Tensor:
    heads = list(heads)
    if not heads:
        raise ValueError("selective_focus_loss: no heads selected")
    return sum(head_losses(model, q_out, fp_out, heads, focus, lam).values())
