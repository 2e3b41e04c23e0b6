"""PD-Quant's two additions to block-wise reconstruction (Liu et al., CVPR 2023): the prediction-difference
loss and the distribution correction of the FP block inputs.

- *Prediction difference.* While a block is tuned, the quantized model's prediction (the block quantized,
  the blocks before it quantized and finished, the blocks after it in float) is compared with the FP model's
  prediction on the same images. PD-Quant's prediction is a classifier's logits compared by a KL divergence
  at temperature T; a lane detector predicts several heads, so here a confidence head contributes the KL
  divergence of its per-cell foreground probability (a Bernoulli KL at temperature T: sigmoid heads on the
  raw output, two-class softmax heads on the logit difference, the same function), averaged over cells, and
  every other head the squared error of its raw output (``losses.squared_error``). The sum is divided by
  ``lambda_r`` and added to the block's reconstruction error and the rounding term.
- *Distribution correction (DC).* The FP inputs of the block, which QDrop's drop mixes into the quantized
  ones, are first moved by Adam so that the per-image, per-channel mean and standard deviation at each
  BatchNorm of the block match the BatchNorm's running statistics, with ``||x - x0||^2 / lambda_c`` keeping
  them near the originals; the block's FP output on the corrected inputs becomes its reconstruction target.
  Folded BatchNorms are read back through the statistics the fold kept (``QuantLayer.bn_*``).
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterable, Iterator, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..quant.modules import QuantLayer
from .losses import squared_error
from .state import quantization_disabled

BN_EPS = 1e-6  # inside the standard deviation of the corrected activations


def head_logit(kind: str, output: torch.Tensor) -> torch.Tensor:
    """The logit whose sigmoid is a confidence head's foreground probability."""
    if kind == "sigmoid":
        return output
    if kind == "softmax1":
        return output[..., 1] - output[..., 0]
    raise ValueError(f"head_logit: conf_fn must be 'sigmoid' or 'softmax1', got {kind!r}")


def bernoulli_kl(fp_logit: torch.Tensor, q_logit: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over cells of KL(p_fp || p_q), p = sigmoid(logit / T), in log-sigmoid form (finite for any
    finite logits)."""
    if fp_logit.shape != q_logit.shape:
        raise ValueError(f"bernoulli_kl: shapes {tuple(fp_logit.shape)} and {tuple(q_logit.shape)} differ")
    a, b = fp_logit / temperature, q_logit / temperature
    p = torch.sigmoid(a)
    kl = p * (F.logsigmoid(a) - F.logsigmoid(b)) + (1 - p) * (F.logsigmoid(-a) - F.logsigmoid(-b))
    return kl.mean()


def prediction_difference(model, q_out: Dict[str, torch.Tensor], fp_out: Dict[str, torch.Tensor],
                          temperature: float) -> Dict[str, torch.Tensor]:
    """Per head: the Bernoulli KL at ``temperature`` for a confidence head, the squared error otherwise."""
    terms = {}
    for spec in model.heads:
        q, fp = q_out[spec.output_key], fp_out[spec.output_key].detach()
        if spec.role == "confidence":
            terms[spec.name] = bernoulli_kl(head_logit(spec.conf_fn, fp), head_logit(spec.conf_fn, q), temperature)
        else:
            terms[spec.name] = squared_error(q, fp)
    return terms


def float_after(modules: Sequence[nn.Module]):
    """The quantized layers and activation products inside ``modules`` (the blocks after the one being
    tuned) computing in float, as they are before their own turn."""
    return quantization_disabled(*modules)


@contextlib.contextmanager
def frozen_except(model: nn.Module, trainable: Iterable[torch.Tensor]) -> Iterator[None]:
    """Only ``trainable`` require gradients inside: a forward through the whole model records no graph for
    the layers before the tuned block and computes no weight gradients after it."""
    keep = {id(p) for p in trainable}
    changed = [p for p in model.parameters() if p.requires_grad and id(p) not in keep]
    for p in changed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in changed:
            p.requires_grad_(True)


class BatchNormStatistics:
    """Forward hooks on a block that collect, for each BatchNorm it holds (folded into a quantized layer, or
    a BatchNorm module left in place), the per-image, per-channel mean and standard deviation of the
    BatchNorm's input, beside the running statistics it expects."""

    def __init__(self, block: nn.Module):
        self.targets: List[tuple] = []
        self.seen: List[torch.Tensor] = []
        self._handles = []
        for m in block.modules():
            if isinstance(m, QuantLayer) and m.has_folded_bn:
                self._handles.append(m.register_forward_hook(self._folded))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                self._handles.append(m.register_forward_hook(self._module))

    def __len__(self) -> int:
        return len(self._handles)

    def _record(self, pre: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, keep=None) -> None:
        if pre.dim() < 3:  # [N, C]: no spatial extent to take statistics over
            return
        flat = pre.flatten(2)
        if keep is not None:
            flat, mean, std = flat[:, keep], mean[keep], std[keep]
        self.seen.append((flat.mean(2), torch.sqrt(flat.var(2) + BN_EPS), mean, std))

    def _folded(self, layer, args, out) -> None:
        keep = layer.bn_scale != 0  # a channel scaled to zero carries no statistics
        shape = (1, -1) + (1,) * (out.dim() - 2)
        scale = torch.where(keep, layer.bn_scale, torch.ones_like(layer.bn_scale))
        pre = (out - layer.bn_shift.view(shape)) / scale.view(shape) + layer.bn_mean.view(shape)
        self._record(pre, layer.bn_mean, layer.bn_std, keep)

    def _module(self, bn, args, out) -> None:
        self._record(args[0], bn.running_mean, torch.sqrt(bn.running_var + bn.eps))

    def loss(self) -> torch.Tensor:
        """Sum over BatchNorms of ||mean - running mean||^2 / N + ||std - running std||^2 / N."""
        total = 0.0
        for mean, std, target_mean, target_std in self.seen:
            n = mean.shape[0]
            total = total + (mean - target_mean).pow(2).sum() / n + (std - target_std).pow(2).sum() / n
        self.seen = []
        return total

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def correct_inputs(block: nn.Module, inputs: tuple, iters: int, lr: float, lambda_c: float,
                   batch_size: int) -> tuple:
    """The block's FP inputs (positional arguments, every tensor batched along dim 0, as ``units.capture``
    returns them) after distribution correction: ``iters`` Adam steps per batch of ``batch_size`` images on
    the floating-point tensors, the rate lowered on plateaus as in PD-Quant; unchanged where the block holds
    no BatchNorm. The block must compute in float (the caller disables quantization)."""
    stats = BatchNormStatistics(block)
    leaves, spec = tree_flatten(inputs)
    floats = [i for i, a in enumerate(leaves) if isinstance(a, torch.Tensor) and a.is_floating_point()]
    if len(stats) == 0 or not floats or iters <= 0:
        stats.remove()
        return inputs
    n = len(leaves[floats[0]])
    corrected = [a.clone() if i in floats else a for i, a in enumerate(leaves)]
    try:
        with frozen_except(block, []):
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                part = [a[sl] if isinstance(a, torch.Tensor) else a for a in leaves]
                xs = {i: part[i].clone().requires_grad_(True) for i in floats}
                opt = torch.optim.Adam(list(xs.values()), lr=lr)
                plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=100, min_lr=1e-5)
                for _ in range(iters):
                    stats.seen = []
                    block(*tree_unflatten([xs.get(i, a) for i, a in enumerate(part)], spec))
                    loss = stats.loss() + sum(squared_error(x, part[i]) for i, x in xs.items()) / lambda_c
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    plateau.step(float(loss.detach()))
                for i, x in xs.items():
                    corrected[i][sl] = x.detach()
    finally:
        stats.remove()
    return tree_unflatten(corrected, spec)
