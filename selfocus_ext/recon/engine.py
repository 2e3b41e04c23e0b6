"""The reconstruction engine: layer-wise (AdaRound), block-wise (BRECQ, QDrop) and network-wise (Selective
Focus and its ablations) tuning of a calibrated quantized model, with checkpoints and resume."""
from __future__ import annotations

import copy
import time
from dataclasses import asdict
from typing import Callable, Dict, List, Optional

import torch
from torch import nn
from torch.utils._pytree import tree_leaves
from tqdm import tqdm

from ..files import load_checked, save_checked
from ..quant.convert import quant_layers
from . import config
from .config import Budget, Method
from .curves import NoiseScoreCurve
from .losses import head_losses, tree_squared_error
from .pdquant import correct_inputs, float_after, frozen_except, prediction_difference
from .rounding import RoundingSchedule, cosine_lr
from .selection import head_error_levels, select_heads
from .state import (DeferredInterrupt, Interrupted, finish_layers, keep_prob_one, prepare_layers,
                    quantization_disabled, restore, structure)
from .units import Unit, cat_batches, capture, find_units, index, tree_nbytes

CHECKPOINT_KIND = "selfocus-recon-v1"
PROBE_IMAGES = 32
# A backward pass's peak is about twice the tensors autograd saves for it: the activation gradients and the
# convolutions' workspaces come on top (measured on RESA-R18 at its real size: 5.9 GiB saved, 12.3 GB peak).
BACKWARD_PEAK_FACTOR = 2
# Reconstructor(overrides=...) keys: the rates, the rounding regulariser's constants (recon.config) and the
# method's hard forward
OVERRIDABLE = ("v_lr", "step_lr", "round_weight", "round_warmup", "beta_start", "beta_end", "hard_forward")


def micro_batch_size(per_image: int, batch_size: int, tuning_memory: Optional[int]) -> int:
    """Images per forward/backward pass so that the backward's estimated peak (``BACKWARD_PEAK_FACTOR`` x the
    saved bytes ``per_image`` x images) stays within ``tuning_memory`` bytes; at least 1, at most the batch."""
    if tuning_memory is None:
        return batch_size
    return max(1, min(batch_size, tuning_memory // (BACKWARD_PEAK_FACTOR * max(1, per_image))))


def saved_bytes(forward: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for the backward of ``forward()`` (each storage counted once):
    what a backward pass keeps alive beyond the parameters."""
    seen: Dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(seen.values())


@torch.no_grad()
def fp_head_outputs(model: nn.Module, images: torch.Tensor, batch_size: int = 64) -> Dict[str, torch.Tensor]:
    """The quantized ``model``'s head outputs computing in float, on every image."""
    with quantization_disabled(model):
        outs = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def _cat_outputs(module: nn.Module, inputs: tuple, batch_size: int):
    """``module``'s outputs on its batched positional ``inputs``, concatenated along the batch."""
    n = len(next(t for t in tree_leaves(inputs) if isinstance(t, torch.Tensor)))
    return cat_batches([module(*index(inputs, torch.arange(i, min(i + batch_size, n)))) for i in range(0, n, batch_size)])


class Reconstructor:
    """Tunes ``qmodel`` (calibrated, from ``quantize_model``) in place with ``method`` on ``images`` (model
    inputs). Every random draw (batches, QDrop masks and seeds) comes from one generator seeded by ``seed``,
    so a run is reproducible and a resumed run continues the same sequence. ``checkpoint``: a file written
    every ``budget.checkpoint_every`` iterations, after every unit, and when Ctrl-C / SIGTERM arrives."""

    def __init__(self, qmodel: nn.Module, method: Method, budget: Budget, images: torch.Tensor, seed: int = 0,
                 checkpoint: Optional[str] = None, curves: Optional[Dict[str, NoiseScoreCurve]] = None,
                 top_k: Optional[int] = None, lam: float = config.SF_LAMBDA, progress: bool = True,
                 log: Callable[[str], None] = lambda s: None, monitor: Optional[Callable[[dict], None]] = None,
                 overrides: Optional[Dict[str, float]] = None, tuning_memory: Optional[int] = None):
        if method.granularity is None:
            raise ValueError(f"method {method.name!r} has no reconstruction stage")
        if method.granularity == "qat":
            raise ValueError(f"method {method.name!r} trains on labelled scenes: use recon.QuantizationAwareTraining")
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
            raise ValueError("Reconstructor: images must be a non-empty [N, 3, H, W] tensor of model inputs")
        if method.select and not curves:
            raise ValueError(f"method {method.name!r} selects heads and needs noise-score curves")
        if lam <= 0:
            raise ValueError(f"lam must be positive, got {lam}")
        if tuning_memory is not None and (not isinstance(tuning_memory, int) or tuning_memory < 1 << 20):
            raise ValueError(f"tuning_memory: expected bytes (at least 1 MiB) or None, got {tuning_memory!r}")
        # bytes the network-wise methods' forward may keep for the backward at once: a batch that needs more
        # runs as micro-batches whose gradients add up (the same step to float rounding)
        self.tuning_memory = tuning_memory
        self.micro_batch: Optional[int] = None
        self._fp_heads_cache: Optional[Dict[str, torch.Tensor]] = None  # PD-Quant's prediction targets
        self.qmodel, self.method, self.budget, self.images = qmodel.eval(), method, budget, images
        # Layer- and block-wise units take their FP inputs and targets from the FP network, as the reference
        # implementations do (they keep the float weights beside the rounding): a copy made here, before any
        # unit is tuned or a checkpoint restored, since tuning writes each finished unit's rounded weights
        # into the model itself.
        self.fp_model = copy.deepcopy(qmodel).eval() if method.granularity in ("layer", "block") else None
        self.seed, self.checkpoint, self.curves, self.lam = seed, checkpoint, curves, lam
        heads = getattr(qmodel, "heads", None) or []
        if top_k is not None and heads and not 1 <= top_k <= len(heads):
            raise ValueError(f"top_k must be in 1..{len(heads)} (the model's heads), got {top_k}")
        self.top_k = top_k if top_k is not None else config.default_top_k(len(heads))
        self.progress, self.log = progress, log
        # called after every iteration with {"event": "iteration", "unit", "unit_index", "it", "iters", "terms"}
        # (the loss terms as floats) and after every finished unit with {"event": "unit_done", ...}: a hook
        # for diagnostics, which may measure the model but must not change it
        self.monitor = monitor
        # other values for the constants of recon.config, for studies of the method (docs/recon.md)
        unknown = sorted(set(overrides or {}) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(f"overrides: unknown keys {unknown}; expected some of {', '.join(OVERRIDABLE)}")
        self.hyper = {"v_lr": method.v_lr, "step_lr": method.step_lr, "round_weight": config.ROUND_WEIGHT,
                      "round_warmup": config.ROUND_WARMUP, "beta_start": config.BETA_START,
                      "beta_end": config.BETA_END, "hard_forward": method.hard_forward, **(overrides or {})}
        self.step_lr = float(self.hyper["step_lr"])
        self.hard_forward = bool(self.hyper["hard_forward"])
        self.gen = torch.Generator().manual_seed(seed)
        self.history: List[dict] = []
        self.unit_seconds: Dict[str, float] = {}
        self.start_unit, self.start_it = 0, 0
        self._optim_state = None
        self.stop_after: Optional[int] = None  # for tests: request an interrupt after this many iterations
        self._iters_run = 0
        self.total_iterations = 0  # the method's iterations over all units (known once the units are found)

    # ---- checkpoints ------------------------------------------------------------------------------------
    def _save(self, unit: int, it: int, optim: Optional[torch.optim.Optimizer]) -> None:
        if not self.checkpoint:
            return
        save_checked({
            "kind": CHECKPOINT_KIND, "method": self.method.name, "budget": asdict(self.budget), "seed": self.seed,
            "unit": unit, "it": it, "structure": structure(self.qmodel), "state": self.qmodel.state_dict(),
            "optim": optim.state_dict() if optim is not None else None, "gen": self.gen.get_state(),
            "history": self.history, "unit_seconds": self.unit_seconds, "top_k": self.top_k, "lam": self.lam,
        }, self.checkpoint)

    def load_checkpoint(self, path: str) -> None:
        ck = load_checked(path, "delete it to tune again from the calibrated model")
        if ck.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"{path} is not a reconstruction checkpoint")
        if ck["method"] != self.method.name or ck["seed"] != self.seed or ck["budget"] != asdict(self.budget):
            raise ValueError(f"{path} belongs to another run (method {ck['method']}, seed {ck['seed']}, "
                             f"budget {ck['budget']['name']}); start a new output directory")
        for name, layer in quant_layers(self.qmodel).items():
            layer.weight_quantizer.scale = torch.empty_like(ck["state"][f"{name}.weight_quantizer.scale"])
            layer.input_quantizer.step = torch.empty_like(ck["state"][f"{name}.input_quantizer.step"])
        restore(self.qmodel, ck["structure"], ck["state"])
        self.gen.set_state(ck["gen"])
        self.history, self.unit_seconds = ck["history"], ck["unit_seconds"]
        self.top_k, self.lam = ck["top_k"], ck["lam"]
        self.start_unit, self.start_it, self._optim_state = ck["unit"], ck["it"], ck["optim"]

    # ---- shared pieces ----------------------------------------------------------------------------------
    def _optimizer(self, layers) -> torch.optim.Optimizer:
        vs = [l.weight_quantizer.v for l in layers if l.weight_quantizer.v is not None]
        steps = [l.input_quantizer.step for l in layers if isinstance(l.input_quantizer.step, nn.Parameter)]
        groups = [{"params": vs, "lr": self.hyper["v_lr"]}]
        if steps:
            groups.append({"params": steps, "lr": self.step_lr})
        opt = torch.optim.Adam(groups)
        if self._optim_state is not None:
            opt.load_state_dict(self._optim_state)
            self._optim_state = None
        return opt

    def _weight_mode(self, layers) -> None:
        if self.hard_forward:
            for l in layers:
                if l.weight_quantizer.v is not None:
                    l.weight_quantizer.mode = "ste"

    def _rounding(self, iters: int) -> RoundingSchedule:
        h = self.hyper
        return RoundingSchedule(iters, h["round_warmup"], h["beta_start"], h["beta_end"], h["round_weight"])

    def _draw_seeds(self, layers) -> None:
        for l in layers:
            l.input_quantizer.seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen))

    def _step(self, opt, loss, it: int, iters: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self._apply_gradients(opt, it, iters)

    def _apply_gradients(self, opt, it: int, iters: int) -> None:
        """The optimizer step on the accumulated gradients, the step sizes' rate on its cosine schedule."""
        if len(opt.param_groups) > 1:
            opt.param_groups[1]["lr"] = cosine_lr(self.step_lr, it, iters)
        opt.step()

    def _after_iteration(self, unit: int, it: int, opt, guard: DeferredInterrupt) -> None:
        self._iters_run += 1
        if self.stop_after is not None and self._iters_run >= self.stop_after:
            guard.requested = True
        if guard.requested:
            self._save(unit, it + 1, opt)
            raise Interrupted(f"interrupted at iteration {it + 1}; checkpoint written to {self.checkpoint}")
        if (it + 1) % self.budget.checkpoint_every == 0:
            self._save(unit, it + 1, opt)

    # ---- entry point ------------------------------------------------------------------------------------
    def run(self) -> Dict[str, object]:
        t0 = time.perf_counter()
        with DeferredInterrupt() as guard:
            if self.method.granularity == "network":
                self._run_network(guard)
            else:
                self._run_units(guard)
        return {"history": self.history, "unit_seconds": self.unit_seconds, "seconds": time.perf_counter() - t0,
                "iterations": self.total_iterations}

    # ---- layer / block ----------------------------------------------------------------------------------
    def _run_units(self, guard: DeferredInterrupt) -> None:
        units = find_units(self.qmodel, self.images[:1], self.method.granularity)
        iters = self.budget.iters(self.method.granularity)
        total = len(units) * iters
        self.total_iterations = total
        bar = tqdm(total=total, initial=self.start_unit * iters + self.start_it, unit="it",
                   desc=f"{self.method.name} ({len(units)} {self.method.granularity}s)", disable=not self.progress)
        for ui in range(self.start_unit, len(units)):
            unit = units[ui]
            t = time.perf_counter()
            start = self.start_it if ui == self.start_unit else 0
            self._tune_unit(ui, unit, iters, start, bar, guard, later=[u.module for u in units[ui + 1:]])
            self.unit_seconds[unit.name] = self.unit_seconds.get(unit.name, 0.0) + time.perf_counter() - t
            self._save(ui + 1, 0, None)
        bar.close()

    def _tune_unit(self, ui: int, unit: Unit, iters: int, start: int, bar, guard, later=()) -> None:
        bs = self.budget.batch_size
        pd = self.method.prediction_difference
        fp_unit = self.fp_model if unit.name == "<model>" else self.fp_model.get_submodule(unit.name)
        with quantization_disabled(self.fp_model):
            fp_in, fp_out = capture(self.fp_model, fp_unit, self.images, 64, want_output=True)
            if pd:  # PD-Quant: the FP inputs corrected towards the BatchNorm statistics, and their FP outputs
                bar.set_postfix_str(f"{unit.name}: distribution correction")
                fp_in = correct_inputs(fp_unit, fp_in, self.budget.dc_iters(), config.PDQ_DC_LR,
                                       config.PDQ_DC_LAMBDA, bs)
                with torch.no_grad():
                    fp_out = _cat_outputs(fp_unit, fp_in, 64)
        q_in, _ = capture(self.qmodel, unit.module, self.images, 64, want_output=False)
        bar.set_postfix_str(f"{unit.name}: cache {(tree_nbytes(fp_in) * 2 + tree_nbytes(fp_out)) / 2**20:.0f} MiB")
        layers = unit.layers
        if start == 0:
            prepare_layers(layers, self.method.keep_prob)
        self._weight_mode(layers)
        opt = self._optimizer(layers)
        rounding = self._rounding(iters)
        n = len(self.images)
        p = self.method.keep_prob
        trainable = [t for g in opt.param_groups for t in g["params"]]
        for it in range(start, iters):
            idx = torch.randint(0, n, (bs,), generator=self.gen)
            inp = index(q_in, idx)
            if p < 1.0:  # QDrop: the block input mixes quantized and FP activations element-wise
                fpi = index(fp_in, idx)
                inp = tuple(torch.where((torch.rand(a.shape, generator=self.gen) < p).to(a.device), a, b)
                            if isinstance(a, torch.Tensor) else a for a, b in zip(inp, fpi))
            self._draw_seeds(layers)
            out = unit.module(*inp)
            rec = tree_squared_error(out, index(fp_out, idx))
            reg = rounding.loss(layers, it)
            terms = {"rec": rec, "round": reg}
            if pd:  # the whole model's prediction with this block quantized, the later ones in float
                with float_after(later), frozen_except(self.qmodel, trainable):
                    pred = self.qmodel(self.images[idx])
                    diff = prediction_difference(self.qmodel, pred, index(self._fp_heads(), idx),
                                                 config.PDQ_TEMPERATURE)
                terms["pd"] = sum(diff.values()) / config.PDQ_LAMBDA_R
            self._step(opt, sum(terms.values()), it, iters)
            bar.update()
            if it % 10 == 0:
                bar.set_postfix_str(f"{unit.name}: rec {float(rec.detach()):.4g}")
            self._notify("iteration", unit.name, ui, it, iters, {k: float(v.detach()) for k, v in terms.items()})
            self._after_iteration(ui, it, opt, guard)
        finish_layers(layers)
        self._notify("unit_done", unit.name, ui, iters, iters, {})

    def _fp_heads(self) -> Dict[str, torch.Tensor]:
        """The FP model's head outputs on every calibration image (computed once)."""
        if self._fp_heads_cache is None:
            self._fp_heads_cache = fp_head_outputs(self.fp_model, self.images)
        return self._fp_heads_cache

    def _notify(self, event: str, unit: str, ui: int, it: int, iters: int, terms: Dict[str, float]) -> None:
        if self.monitor is not None:
            self.monitor({"event": event, "unit": unit, "unit_index": ui, "it": it, "iters": iters, "terms": terms})

    # ---- network ----------------------------------------------------------------------------------------
    def _run_network(self, guard: DeferredInterrupt) -> None:
        self.total_iterations = self.budget.network_iters
        if self.start_unit >= 1:
            return  # resumed from the final checkpoint: the network is tuned (hard rounding, frozen steps)
        q = self.qmodel
        heads = [h.name for h in q.heads]
        bs, iters = self.budget.batch_size, self.budget.network_iters
        t = time.perf_counter()  # the FP pass counts as the method's time, as a block-wise method's captures do
        fp_out = fp_head_outputs(q, self.images)
        probe = torch.arange(min(PROBE_IMAGES, len(self.images)))
        layers = list(quant_layers(q).values())
        if self.start_it == 0:
            prepare_layers(layers, self.method.keep_prob)
        self._weight_mode(layers)
        opt = self._optimizer(layers)
        rounding = self._rounding(iters)
        refresh = max(1, self.budget.refresh)
        selected = self.history[-1]["selected"] if self.history else heads
        bar = tqdm(total=iters, initial=self.start_it, unit="it", desc=f"{self.method.name} (network)",
                   disable=not self.progress)
        for it in range(self.start_it, iters):
            if it % refresh == 0 and (not self.history or self.history[-1]["iteration"] != it):
                selected = self._refresh(it, probe, fp_out, heads)
            idx = torch.randint(0, len(self.images), (bs,), generator=self.gen)
            self._draw_seeds(layers)
            if self.micro_batch is None:
                self.micro_batch = self._micro_batch(fp_out, selected)
            if self.micro_batch >= bs:
                out = q(self.images[idx])
                terms = head_losses(q, out, index(fp_out, idx), selected, self.method.focus, self.lam)
                rec = sum(terms.values())
                reg = rounding.loss(layers, it)
                self._step(opt, rec + reg, it, iters)
            else:
                reg = rounding.loss(layers, it)
                terms = self._micro_batched_step(opt, idx, fp_out, selected, reg, it, iters)
                rec = sum(terms.values())
            bar.update()
            if it % 10 == 0:
                bar.set_postfix_str(f"rec {float(rec.detach()):.4g} heads {'+'.join(selected)}")
            self._notify("iteration", "network", 0, it, iters,
                         {**{k: float(v.detach()) for k, v in terms.items()}, "round": float(reg.detach())})
            self._after_iteration(0, it, opt, guard)
        bar.close()
        finish_layers(layers)
        self._notify("unit_done", "network", 0, iters, iters, {})
        self._refresh(iters, probe, fp_out, heads, final=True)
        self.unit_seconds["network"] = self.unit_seconds.get("network", 0.0) + time.perf_counter() - t
        self._save(1, 0, None)

    def _micro_batch(self, fp_out, heads) -> int:
        """Images per forward/backward pass within ``tuning_memory``: from the bytes one image's forward and
        loss keep for the backward (the tensors autograd saves, each storage once), measured on one image, and
        the backward's transients on top of them (``micro_batch_size``)."""
        if self.tuning_memory is None:
            return self.budget.batch_size
        one = torch.zeros(1, dtype=torch.long)
        per_image = max(1, saved_bytes(lambda: sum(head_losses(self.qmodel, self.qmodel(self.images[one]),
                                                               index(fp_out, one), heads, self.method.focus,
                                                               self.lam).values())))
        micro = micro_batch_size(per_image, self.budget.batch_size, self.tuning_memory)
        if micro < self.budget.batch_size:
            self.log(f"tuning: {per_image / 2**20:.0f} MiB of saved activations per image (about "
                     f"{BACKWARD_PEAK_FACTOR}x that at the backward's peak); batches of "
                     f"{self.budget.batch_size} run as micro-batches of {micro} (--tuning-memory)")
        return micro

    def _micro_batched_step(self, opt, idx, fp_out, heads, reg, it: int, iters: int) -> Dict[str, torch.Tensor]:
        """One step on the batch ``idx`` as micro-batches: each part's loss weighted by its share of the
        batch (the losses are means over images), gradients accumulated, then the rounding term's. Returns
        the batch's loss terms (detached)."""
        opt.zero_grad(set_to_none=True)
        terms: Dict[str, torch.Tensor] = {}
        for part in idx.split(self.micro_batch):
            out = self.qmodel(self.images[part])
            part_terms = head_losses(self.qmodel, out, index(fp_out, part), heads, self.method.focus, self.lam)
            share = len(part) / len(idx)
            (sum(part_terms.values()) * share).backward()
            for k, v in part_terms.items():
                terms[k] = terms.get(k, 0.0) + v.detach() * share
        reg.backward()
        self._apply_gradients(opt, it, iters)
        return terms

    @torch.no_grad()
    def _refresh(self, it: int, probe, fp_out, heads, final: bool = False) -> List[str]:
        """Measures every head's current error on the probe images; selects the top-k when the method does."""
        with keep_prob_one(self.qmodel):
            out = self.qmodel(self.images[probe])
        levels = head_error_levels(self.qmodel, out, index(fp_out, probe))
        predicted = {h: float(self.curves[h](v)) for h, v in levels.items()} if self.curves else {}
        if self.method.select and not final:
            selected = select_heads(self.curves, levels, self.top_k)
        else:
            selected = list(heads)
        self.history.append({"iteration": it, "levels": levels, "predicted": predicted, "selected": selected,
                             "final": final})
        if not final:
            self.log(f"iteration {it}: error {', '.join(f'{h} {v:.3g}' for h, v in levels.items())}"
                     f" -> heads {'+'.join(selected)}")
        return selected
