"""LSQ+ quantization-aware training: the comparison the paper draws against post-training methods.

The calibrated quantized model is trained with the model family's own loss on labelled generated scenes (the
zoo's training loop): every weight moves (fake-quantized per output channel with the calibrated scales,
straight-through gradient), and every quantized activation gets LSQ+'s learnable step and offset (an
unsigned grid starting at the offset, initialised where the calibrated grid sits). Unlike the
reconstruction methods it needs labels, and it costs training time: the point of the comparison.
"""
from __future__ import annotations

import inspect
import math
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..files import load_checked, save_checked
from ..quant.convert import quant_layers
from .config import QAT_LR_QUANT, QAT_LR_WEIGHTS, Budget
from .state import DeferredInterrupt, Interrupted, finish_layers

CHECKPOINT_KIND = "selfocus-qat-v1"


def _to(tree, device):
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {k: _to(v, device) for k, v in tree.items()}
    return tree


class QuantizationAwareTraining:
    """Trains ``qmodel`` (calibrated, from ``quantize_model``; a zoo model or any LaneModel with ``targets``
    and ``loss``) in place for ``budget.qat_iters`` steps of ``budget.batch_size`` labelled scenes.
    ``checkpoint``: written every ``budget.checkpoint_every`` steps and on Ctrl-C / SIGTERM; ``resume``
    continues it to the same result. ``make_trainset(scenes, seed, model_input)`` returns the labelled
    training set (``{"images": ...}`` plus the model's targets; the zoo's is models.targets.build_trainset):
    the engine knows no model family, the caller names where labelled scenes come from. One that also takes
    ``only=positions`` is asked for the drawn scenes alone (a short run then renders only those)."""

    def __init__(self, qmodel: nn.Module, budget: Budget, seed: int = 0, train_scenes: int = 8000,
                 checkpoint: Optional[str] = None, progress: bool = True, device: str = "cpu",
                 log: Callable[[str], None] = lambda s: None, make_trainset: Optional[Callable] = None):
        if not callable(make_trainset):
            raise ValueError("quantization-aware training: make_trainset must be a callable (scenes, seed, "
                             "model_input) -> labelled training set (models.targets.build_trainset for the zoo)")
        for attr in ("targets", "loss", "model_input"):
            if not hasattr(qmodel, attr):
                raise ValueError(f"quantization-aware training needs the model's own {attr!r} (a zoo model or a "
                                 "LaneModel that defines targets() and loss())")
        if budget.qat_iters < 1:
            raise ValueError(f"budget {budget.name!r} gives quantization-aware training no iterations")
        if train_scenes < 1:
            raise ValueError(f"train_scenes must be positive, got {train_scenes}")
        self.q, self.budget, self.seed, self.device = qmodel, budget, seed, device
        self.train_scenes, self.checkpoint, self.progress, self.log = train_scenes, checkpoint, progress, log
        self.make_trainset = make_trainset
        self.start = 0
        self._optim_state = None
        self.stop_after: Optional[int] = None  # for tests: request an interrupt after this many steps
        layers = list(quant_layers(qmodel).values())
        if not layers:
            raise ValueError("quantization-aware training: the model has no quantized layers")
        for layer in layers:
            q = layer.input_quantizer
            if q.enabled and q.offset is None:
                q.make_offset_learnable()
            q.keep_prob = 1.0

    def _quant_params(self):
        out = []
        for layer in quant_layers(self.q).values():
            q = layer.input_quantizer
            out += [p for p in (q.step, q.offset) if isinstance(p, nn.Parameter)]
        return out

    def _optimizer(self) -> torch.optim.Optimizer:
        quant = self._quant_params()
        ids = {id(p) for p in quant}
        weights = [p for p in self.q.parameters() if id(p) not in ids and p.requires_grad]
        opt = torch.optim.Adam([{"params": weights, "lr": QAT_LR_WEIGHTS}, {"params": quant, "lr": QAT_LR_QUANT}])
        if self._optim_state is not None:
            opt.load_state_dict(self._optim_state)
            self._optim_state = None
        return opt

    def _save(self, step: int, opt) -> None:
        if self.checkpoint:
            save_checked({"kind": CHECKPOINT_KIND, "step": step, "seed": self.seed, "qat_iters": self.budget.qat_iters,
                          "state": self.q.state_dict(), "optim": opt.state_dict() if opt is not None else None},
                         self.checkpoint)

    def load_checkpoint(self, path: str) -> None:
        ck = load_checked(path, "delete it to train again from the calibrated model")
        if ck.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"{path} is not a quantization-aware training checkpoint")
        if ck["seed"] != self.seed or ck["qat_iters"] != self.budget.qat_iters:
            raise ValueError(f"{path} belongs to another run (seed {ck['seed']}, {ck['qat_iters']} steps)")
        self.q.load_state_dict(ck["state"])
        self.start, self._optim_state = ck["step"], ck["optim"]

    def _trainset(self, mi, draws: Dict[int, np.ndarray]):
        """The labelled scenes the steps draw, and the map from a scene's position among the ``train_scenes``
        to its row there: a ``make_trainset`` that takes ``only`` renders just the drawn scenes."""
        n = self.train_scenes
        needed = np.unique(np.concatenate(list(draws.values()))) if draws else np.zeros(0, np.int64)
        if len(needed) < n and "only" in inspect.signature(self.make_trainset).parameters:
            data = self.make_trainset(n, self.seed, mi, only=needed)
            if len(data["images"]) != len(needed):
                raise ValueError(f"make_trainset(only=...) returned {len(data['images'])} scenes for "
                                 f"{len(needed)} positions")
            return data, lambda idx: np.searchsorted(needed, idx)
        data = self.make_trainset(n, self.seed, mi)
        if len(data["images"]) != n:
            raise ValueError(f"make_trainset returned {len(data['images'])} scenes, expected train_scenes={n}")
        return data, lambda idx: idx

    def run(self) -> Dict[str, object]:
        t0 = time.perf_counter()
        iters, bs = self.budget.qat_iters, self.budget.batch_size
        mi = self.q.model_input
        n = self.train_scenes
        # the batch of step s is a pure function of (seed, s): a resumed run draws the same, and the scenes the
        # remaining steps draw are known before the first
        draws = {s: np.random.default_rng([self.seed, s]).integers(0, n, bs) for s in range(self.start, iters)}
        data, row = self._trainset(mi, draws)
        opt = self._optimizer()
        self.q.train()
        done = self.start
        bar = tqdm(total=iters, initial=self.start, unit="it", desc="lsq-qat (network, labelled)",
                   disable=not self.progress)
        try:
            with DeferredInterrupt() as guard:
                for step in range(self.start, iters):
                    idx = row(draws[step])
                    x = mi.normalize(data["images"][idx]).to(self.device)
                    t = _to(self.q.targets(data["slots"][idx]), self.device)
                    loss = self.q.loss(self.q(x), t)
                    for g in opt.param_groups:  # cosine annealing of both groups
                        g["lr"] = g.setdefault("initial_lr", g["lr"]) * 0.5 * (1 + math.cos(math.pi * step / iters))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.q.parameters(), 5.0)
                    opt.step()
                    done = step + 1
                    bar.update()
                    if step % 10 == 0:
                        bar.set_postfix_str(f"loss {float(loss.detach()):.4g}")
                    if self.stop_after is not None and done - self.start >= self.stop_after:
                        guard.requested = True
                    if guard.requested:
                        self._save(done, opt)
                        raise Interrupted(f"interrupted at step {done}; checkpoint written to {self.checkpoint}")
                    if done % self.budget.checkpoint_every == 0:
                        self._save(done, opt)
        finally:
            bar.close()
            self.q.eval()
        with torch.no_grad():  # the weights the deployed model computes with, as reconstruction leaves them
            for layer in quant_layers(self.q).values():
                layer.weight.copy_(layer.qweight())
        finish_layers(quant_layers(self.q).values())
        self._save(iters, None)
        return {"history": [], "unit_seconds": {"network (labelled)": time.perf_counter() - t0},
                "seconds": time.perf_counter() - t0, "iterations": iters}
