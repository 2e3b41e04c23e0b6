"""The float training loop shared by the zoo and the published detectors: AdamW on a one-cycle schedule,
gradient clipping, a checkpoint every few steps and a per-step log, so that a stopped run resumes to the
weights an uninterrupted one reaches.

Resume equals uninterrupted because each step's batch depends on (seed, step) alone and the checkpoint holds
the model, the optimiser, the schedule and torch's RNG state. The per-step log (JSON lines: step, loss, rate,
seconds) is cut back to the checkpoint's step on resume, so it never holds a step twice.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ..files import atomic_save


@dataclass(frozen=True)
class TrainOptions:
    steps: int
    minutes: float = 28.0
    batch: int = 16
    lr: float = 2e-3
    seed: int = 0
    ckpt_every: int = 200
    resume: bool = False
    stop_at_step: Optional[int] = None
    weight_decay: float = 1e-4
    clip: float = 5.0
    warmup: float = 0.05  # share of the steps the one-cycle schedule warms up over

    def __post_init__(self):
        for name in ("steps", "batch", "ckpt_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr!r}")
        if self.stop_at_step is not None and self.stop_at_step < 0:
            raise ValueError(f"stop_at_step: expected a step >= 0, got {self.stop_at_step!r}")


@dataclass
class TrainResult:
    step: int
    elapsed: float  # seconds of training over every session of the run
    loss: Optional[float]  # running mean of the loss at the last step (None when no step ran)


# (step's image indices) -> (normalized input batch, targets)
BatchFn = Callable[[np.ndarray], Tuple[torch.Tensor, object]]
LossFn = Callable[[object, object], torch.Tensor]


def _truncate_log(path: str, step: int) -> None:
    """Keeps the log's lines of steps up to ``step`` (a resumed run repeats none)."""
    if not os.path.isfile(path):
        return
    with open(path) as fh:
        kept = [line for line in fh if line.strip() and json.loads(line)["step"] <= step]
    with open(path, "w") as fh:
        fh.writelines(kept)


def train(model: torch.nn.Module, n_images: int, batch_fn: BatchFn, loss_fn: LossFn, ckpt: str,
          opts: TrainOptions, desc: str, log_path: Optional[str] = None) -> TrainResult:
    """Trains ``model`` in place until ``opts.steps`` (or ``stop_at_step``, or ``minutes`` of wall time), writing
    ``ckpt`` every ``ckpt_every`` steps and at the end (also on Ctrl-C). ``loss_fn(outputs, targets)``."""
    if n_images < 1:
        raise ValueError(f"n_images: expected at least one training image, got {n_images}")
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts.lr, total_steps=opts.steps, pct_start=opts.warmup)
    step, elapsed = 0, 0.0
    if opts.resume and os.path.isfile(ckpt):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, elapsed = state["step"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed {desc} at step {step} ({elapsed / 60:.1f} min)")
    if log_path is not None:
        _truncate_log(log_path, step)

    def save():
        atomic_save(dict(model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), step=step,
                         elapsed=elapsed, torch_rng=torch.get_rng_state()), ckpt)

    model.train()
    if log_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    log = open(log_path, "a") if log_path is not None else None
    bar = tqdm(total=opts.steps, initial=step, desc=f"train {desc}", unit="step")
    t0 = time.time() - elapsed
    running = None
    try:
        stop = opts.steps if opts.stop_at_step is None else min(opts.steps, opts.stop_at_step)
        while step < stop and (time.time() - t0) < opts.minutes * 60:
            # each step's batch from (seed, step) alone: a resumed run draws what an uninterrupted one would
            idx = np.random.default_rng([opts.seed, step]).integers(0, n_images, opts.batch)
            t_step = time.time()
            x, targets = batch_fn(idx)
            loss = loss_fn(model(x), targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training {desc}: the loss is {float(loss.detach())} at step {step}; "
                                         f"the last checkpoint ({ckpt}) holds the weights before it")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
            opt.step()
            rate = sched.get_last_lr()[0]
            sched.step()
            step += 1
            value = loss.item()
            running = value if running is None else 0.98 * running + 0.02 * value
            bar.update(1)
            bar.set_postfix(loss=f"{running:.4f}")
            if log is not None:
                log.write(json.dumps({"step": step, "loss": round(value, 6), "lr": rate,
                                      "seconds": round(time.time() - t_step, 3)}) + "\n")
            if step % opts.ckpt_every == 0:
                elapsed = time.time() - t0
                if log is not None:
                    log.flush()
                save()
    except KeyboardInterrupt:
        print("interrupted: saving a checkpoint")
    finally:
        if log is not None:
            log.close()
    elapsed = time.time() - t0
    save()
    bar.close()
    return TrainResult(step, elapsed, running)
