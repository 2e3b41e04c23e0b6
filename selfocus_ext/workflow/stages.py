"""The quantization stages of a tune run, in order: FP evaluation, calibration, noise-score curves, tuning and
the held-out keep. Each records its result under its own key of the run's progress record (its resume
record) and returns what the next stage needs; a stage whose key is recorded is not run again."""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict
from typing import Dict, Optional

import torch
from torch import nn

from ..files import save_checked
from ..models.targets import build_trainset
from ..quant import calibrate as calibrate_model
from ..quant import load_quantized, quantize_model, save_quantized
from ..recon import Interrupted, NoiseScoreCurve, QuantizationAwareTraining, Reconstructor, load_or_build_curves
from . import heldout
from .data import heldout_set
from .job import TuneJob, read_cache


def evaluate_fp(job: TuneJob) -> torch.Tensor:
    """The FP model's lanes on the test set (the reference of every distortion score). On generated scenes
    they are cached across runs by weights and test set (--cache-dir). Record: "fp"."""
    run = job.run
    if not run.has("fp"):
        cache = job.cache_path("fp-lanes")
        t = time.perf_counter()
        hit = read_cache(cache)
        if hit is not None:
            run.save_lanes("fp", hit["xs"], hit.get("counts"))
            run.progress["fp"] = hit["result"]
            run.seconds["evaluate fp (cached)"] = time.perf_counter() - t
            run.save()
            return run.load_lanes("fp")
        xs = job.evaluate_into(job.model, "fp", "FP model")
        if cache:
            save_checked({"xs": xs, "counts": run.load_counts("fp"), "result": run.progress["fp"]}, cache)
    return run.load_lanes("fp")


def calibrate(job: TuneJob, fp_xs: torch.Tensor) -> nn.Module:
    """The converted model with calibrated steps (the start of every tuning method), saved as calibrated.pt.
    On generated scenes the calibrated model and its test-set lanes are cached across runs (methods sharing
    the quantization config share the entry). Record: "calibrated"."""
    run, s = job.run, job.settings
    cache = None if run.has("calibrated") else job.cache_path("calibrated", *job.config.cache_key(), s.calib, s.seed)
    hit = read_cache(cache)
    if hit is not None:
        save_checked(hit["model"], run.path("calibrated.pt"))
        run.save_lanes("calibrated", hit["xs"], hit.get("counts"))
        run.progress["calibrated"] = hit["result"]
        run.seconds["calibration + evaluation (cached)"] = 0.0
        run.save()
    if not run.has("calibrated"):
        images = job.calibration_images()
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qmodel = quantize_model(job.model, job.config)
        calibrate_model(qmodel.to(job.device), images.to(job.device), progress=job.show_progress)
        qmodel.cpu()
        save_quantized(qmodel, run.path("calibrated.pt"))
        run.seconds["calibration"] = time.perf_counter() - t
        xs = job.evaluate_into(qmodel, "calibrated", "calibrated model", reference=fp_xs)
        if cache:
            save_checked({"model": run.load_file("calibrated"), "xs": xs, "counts": run.load_counts("calibrated"),
                          "result": run.progress["calibrated"]}, cache)
    return load_quantized(job.model, run.path("calibrated.pt"), run.redo_hint("calibrated"))


def noise_score_curves(job: TuneJob) -> Optional[Dict[str, NoiseScoreCurve]]:
    """One noise-score curve per head, for methods with Sensitivity Aware Selection (else None). Record:
    "curves"."""
    if not job.method.select:
        return None
    run = job.run
    if not run.has("curves"):
        images = job.calibration_images()
        n = min(job.budget.curve_images, len(images))
        curves, secs, cached = load_or_build_curves(
            job.model, images[:n], job.cache_dir or None, job.budget.curve_levels, job.budget.curve_reruns,
            job.settings.seed, job.show_progress, job.settings.model, memory=job.curves_memory)
        run.progress["curves"] = {k: asdict(v) for k, v in curves.items()}
        run.seconds["noise-score curves" + (" (cached)" if cached else "")] = 0.0 if cached else secs
        run.progress["curves_build_seconds"] = secs  # what building them took, here or when they were cached
        run.save()
    return {k: NoiseScoreCurve(**v) for k, v in run.progress["curves"].items()}


def tune(job: TuneJob, qmodel: nn.Module, curves, fp_xs: torch.Tensor) -> Optional[nn.Module]:
    """Reconstruction (or quantization-aware training) from the last checkpoint, saved as tuned.pt; None when
    interrupted (checkpoint.pt holds where it stopped). Record: "tuned", "selection", "unit_seconds",
    "iterations"."""
    run, s = job.run, job.settings
    checkpoint = run.path("checkpoint.pt")
    if job.method.granularity == "qat":
        rec = QuantizationAwareTraining(qmodel.to(job.device), job.budget, seed=s.seed, checkpoint=checkpoint,
                                        progress=job.show_progress, device=job.device, make_trainset=build_trainset)
    else:
        overrides = {k: v for k, v in (("v_lr", s.v_lr), ("step_lr", s.step_lr)) if v is not None}
        rec = Reconstructor(qmodel.to(job.device), job.method, job.budget, job.calibration_images().to(job.device),
                            seed=s.seed, checkpoint=checkpoint, curves=curves, top_k=s.top_k, lam=s.lam,
                            progress=job.show_progress, overrides=overrides, tuning_memory=job.tuning_memory)
    if os.path.isfile(checkpoint):
        rec.load_checkpoint(checkpoint)
        job.say(f"resuming tuning from {checkpoint}")
    try:
        result = rec.run()
    except Interrupted as exc:
        job.say(f"{exc}\ncontinue with: python -m selfocus_ext.tune --out {run.out} --resume (and the same "
                "arguments)")
        return None
    qmodel = qmodel.cpu()
    save_quantized(qmodel, run.path("tuned.pt"))
    run.seconds["tuning"] = sum(result["unit_seconds"].values())
    run.progress["selection"] = result["history"]
    run.progress["unit_seconds"] = result["unit_seconds"]
    run.progress["iterations"] = result["iterations"]
    micro = getattr(rec, "micro_batch", None)  # (network-wise methods)
    if micro is not None and micro < job.budget.batch_size:
        run.progress["micro_batch"] = micro
        job.say(f"tuning ran its batches of {job.budget.batch_size} as micro-batches of {micro} "
                "(--tuning-memory)")
    job.evaluate_into(qmodel, "tuned", "tuned model", reference=fp_xs)
    os.remove(checkpoint)
    return qmodel


def keep_better(job: TuneJob) -> Dict[str, object]:
    """The start (calibrated) and the tuned model measured on held-out calibration-like images against the FP
    model, without labels; quantized.pt is the tuned model unless its distortion is above the start's
    (--keep-tuned: the tuned model regardless). Record: "kept"."""
    run, s = job.run, job.settings
    t = time.perf_counter()
    n = job.budget.heldout_images
    images = heldout_set(job.spec, n, s.calib, s.seed, job.model.model_input)
    ref = heldout.reference(job.model, images, device=job.device)
    start = heldout.score(load_quantized(job.model, run.path("calibrated.pt"), run.redo_hint("calibrated")), ref,
                          device=job.device)
    tuned_path = run.path("tuned.pt")
    if not os.path.isfile(tuned_path) and os.path.isfile(run.path("quantized.pt")):
        os.replace(run.path("quantized.pt"), tuned_path)  # a run tuned before the check existed
    tuned = heldout.score(load_quantized(job.model, tuned_path, run.redo_hint("tuned")), ref, device=job.device)
    choice = heldout.choose(start, tuned, s.keep_tuned)
    stage = "tuned" if choice["kept"] == "tuned" else "calibrated"
    save_checked(run.load_file(stage), run.path("quantized.pt"))
    run.progress["kept"] = {**choice, "images": n, "start": start.to_dict(), "tuned": tuned.to_dict()}
    run.seconds["held-out check"] = time.perf_counter() - t
    run.save()
    return run.progress["kept"]


def returned_model(job: TuneJob, qmodel: nn.Module) -> nn.Module:
    """quantized.pt, the model the run returns (the calibrated one for the calibration baselines)."""
    run = job.run
    if not job.tunes and not os.path.isfile(run.path("quantized.pt")):
        save_quantized(qmodel, run.path("quantized.pt"))
    return load_quantized(job.model, run.path("quantized.pt"), run.redo_hint("kept" if job.tunes else "calibrated"))
