"""Quantize a lane model end to end: calibrate, tune, evaluate, report, save.

    python -m selfocus_ext.tune [--model ganet-s] [--bits w4a4] [--method sf] [--data synth | culane:ROOT |
                                tusimple:ROOT] [--calib 512] [--budget quick] [--out runs/NAME] [--resume]
                                [--device cpu|cuda] [--export onnx [--export-format qdq|qcdq]]

With no arguments: the shipped ganet-s, generated scenes, W4A4, Selective Focus, quick budget. Every stage
saves what it finished under --out; --resume continues an interrupted run from there (tuning from its last
checkpoint, to the same result). --export onnx writes the quantized network as model.onnx into the run and
scores it in onnxruntime on the same test set (its F1 joins the report).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Dict, List, Optional

import torch

from .files import DamagedFileError, atomic_write_json, load_checked, read_json, save_checked
from .models import registry
from .models.published import CheckpointError
from .quant import calibrate, load_quantized, parse_bits, quantize_model, save_quantized
from .quant.observers import OBSERVERS
from .recon import (BUDGETS, METHODS, Interrupted, NoiseScoreCurve, QuantizationAwareTraining, Reconstructor,
                    get_budget, get_method, load_or_build_curves)
from .recon import config as rconfig
from .workflow import plots
from .workflow.data import DATA_HELP, TEST_SEED, calibration_set, evaluation_set, model_input_for, parse_data
from .workflow.evaluation import evaluate
from .workflow.report import format_table, write_reports

RUN_FILE = "run.json"
MAX_CALIB = 100_000
PROGRESS_FILE = "progress.json"


class UsageError(ValueError):
    pass


@dataclass(frozen=True)
class RunSettings:
    """What defines a run (saved as run.json; --resume requires the same)."""

    model: str
    bits: str
    method: str
    data: str
    calib: int
    budget: str
    iters: Optional[int]
    batch_size: Optional[int]
    test: Optional[int]
    top_k: Optional[int]
    lam: float
    keep_prob: Optional[float]
    seed: int
    weight_observer: Optional[str] = None  # None: the method's
    first_last_8bit: bool = True  # the first layer and the heads' output layers at 8 bits
    keep_tuned: bool = False  # keep the tuned model even when the held-out check prefers the start
    v_lr: Optional[float] = None  # None: recon.config's rates
    step_lr: Optional[float] = None
    checkpoint: Optional[str] = None  # a published model's weights (absolute path)
    anchors: Optional[str] = None  # LaneATT's anchor frequency file (absolute path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m selfocus_ext.tune", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ganet-s", help="zoo or published model (--list-models shows them)")
    p.add_argument("--checkpoint", help="weights to quantize: for a published model (e.g. scnn-r18) a checkpoint "
                   "file of the implementation it comes from; for a zoo model a file saved by this package")
    p.add_argument("--anchors", help="LaneATT (published): the anchor frequency file its checkpoint was trained "
                   "with (the implementation's data/culane_anchors_freq.pt)")
    p.add_argument("--list-models", action="store_true", help="list the zoo and the published models, then exit")
    p.add_argument("--bits", default="w4a4", help="weight and activation bits, e.g. w4a4, w8a4 (2-8 bits)")
    p.add_argument("--method", default="sf", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--data", default="synth", help=DATA_HELP)
    p.add_argument("--calib", type=int, default=512, help="calibration images (default 512)")
    p.add_argument("--budget", default="quick", help=f"iteration budget: {', '.join(BUDGETS)}, or fN (e.g. f0.05): every "
                   "method gets the fraction N of its paper iterations (default quick = f0.12 at batch 16)")
    p.add_argument("--iters", type=int, help="override the budget's iterations (per unit, or for the network)")
    p.add_argument("--batch-size", type=int, help="override the budget's batch size")
    p.add_argument("--test", type=int, help="test images (default: the budget's count of generated scenes; "
                                            "all test images of a data set)")
    p.add_argument("--top-k", type=int, help="heads selected by Sensitivity Aware Selection (default: 1 for "
                                             "two-head models, 2 otherwise)")
    p.add_argument("--lam", type=float, default=rconfig.SF_LAMBDA,
                   help=f"confidence weight of Semantic Guided Focus (default {rconfig.SF_LAMBDA})")
    p.add_argument("--keep-prob", type=float, help="QDrop keep probability (default: the method's)")
    p.add_argument("--weight-observer", help=f"weight calibration, one of {', '.join(sorted(OBSERVERS))} "
                   "(default: the method's; docs/quant.md)")
    p.add_argument("--v-lr", type=float, help=f"Adam rate of AdaRound's rounding variables (default {rconfig.V_LR:g})")
    p.add_argument("--step-lr", type=float, help="Adam rate of the activation step sizes (default: "
                   f"{rconfig.STEP_LR_BLOCK:g} layer- and block-wise, {rconfig.STEP_LR_NETWORK:g} network-wise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-last-at-bits", action="store_true",
                   help="quantize the first layer and the heads' output layers at --bits too (default: 8 bits)")
    p.add_argument("--keep-tuned", action="store_true",
                   help="return the tuned model even when its held-out distortion is above the start's (default: "
                        "the better of the two is kept; experiment tables pass this to report the raw tuned model)")
    p.add_argument("--out", help="output directory (default runs/MODEL-BITS-METHOD-BUDGET)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--cache-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "selfocus_ext"),
                   help="where noise-score curves are cached ('' disables)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--export", choices=["onnx"], help="also write model.onnx (QuantizeLinear/DequantizeLinear "
                   "nodes) and score it in onnxruntime; needs pip install -e .[export]")
    p.add_argument("--export-format", default="qdq", choices=["qdq", "qcdq"],
                   help="qdq: int4/int8 types (default); qcdq: 8-bit containers with a Clip to the low-bit range")
    return p


def settings_from_args(args) -> RunSettings:
    """Validates every argument (one clear error each) and returns the run's settings."""
    if args.model not in registry.available():
        raise UsageError(f"--model: unknown model {args.model!r}; available: {', '.join(registry.available())}")
    checkpoint = check_checkpoint(args.model, args.checkpoint)
    anchors = check_anchors(args.model, args.anchors, checkpoint)
    try:
        parse_bits(args.bits)
    except ValueError as exc:
        raise UsageError(f"--bits: {exc}") from None
    for check in (lambda: get_method(args.method), lambda: get_budget(args.budget)):
        try:
            check()
        except ValueError as exc:
            raise UsageError(f"--{'method' if 'method' in str(exc) else 'budget'}: {exc}") from None
    try:
        data = parse_data(args.data)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if get_method(args.method).granularity == "qat" and data.kind != "synth":
        raise UsageError(f"--method {args.method}: quantization-aware training trains on labelled generated scenes "
                         "(the zoo's training data); use --data synth")
    for name in ("calib", "iters", "batch_size", "test", "top_k"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {v}")
    for name in ("v_lr", "step_lr"):
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")
    if args.keep_prob is not None and not 0.0 < args.keep_prob <= 1.0:
        raise UsageError(f"--keep-prob must be in (0, 1], got {args.keep_prob}")
    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in [0, 2**63), got {args.seed}")
    if args.calib > MAX_CALIB:
        raise UsageError(f"--calib {args.calib}: at most {MAX_CALIB} calibration images (they are held in memory)")
    if not (math.isfinite(args.lam) and args.lam > 0):
        raise UsageError(f"--lam must be a positive finite number, got {args.lam}")
    if args.weight_observer is not None and args.weight_observer not in OBSERVERS:
        raise UsageError(f"--weight-observer: unknown observer {args.weight_observer!r}; expected one of "
                         f"{', '.join(sorted(OBSERVERS))}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available to this torch build")
    return RunSettings(model=args.model, bits=args.bits.lower(), method=args.method, data=str(data),
                       calib=args.calib, budget=args.budget, iters=args.iters, batch_size=args.batch_size,
                       test=args.test, top_k=args.top_k, lam=args.lam, keep_prob=args.keep_prob, seed=args.seed,
                       weight_observer=args.weight_observer, first_last_8bit=not args.first_last_at_bits,
                       keep_tuned=args.keep_tuned, v_lr=args.v_lr, step_lr=args.step_lr, checkpoint=checkpoint,
                       anchors=anchors)


def check_checkpoint(model: str, checkpoint: Optional[str]) -> Optional[str]:
    """The checkpoint's absolute path; a published model needs one (its weights are the user's)."""
    from .models.published import catalog

    if checkpoint is None:
        if model in {e.name for e in catalog()}:
            raise UsageError(f"--checkpoint: {model} is a published architecture and ships no weights; pass "
                             "--checkpoint FILE (a checkpoint of the implementation it comes from)")
        return None
    if not os.path.isfile(checkpoint):
        raise UsageError(f"--checkpoint: no file {checkpoint}")
    return os.path.abspath(checkpoint)


def check_anchors(model: str, anchors: Optional[str], checkpoint: Optional[str]) -> Optional[str]:
    from .models.published import catalog

    takes = any(e.name == model and "anchors" in e.extras for e in catalog())
    if anchors is None:
        if takes and checkpoint is not None:
            raise UsageError(f"--anchors: {model} chooses its anchors from the training set's anchor frequencies; "
                             "pass the implementation's anchor frequency file (data/culane_anchors_freq.pt)")
        return None
    if not takes:
        raise UsageError(f"--anchors: {model} takes no anchor file (only the published LaneATT models do)")
    if not os.path.isfile(anchors):
        raise UsageError(f"--anchors: no file {anchors}")
    return os.path.abspath(anchors)


def list_models() -> str:
    from .models.published import listing

    return (f"zoo (trained on generated scenes, weights shipped): {', '.join(n for n in registry.available() if n not in registry.published_names())}\n\n"
            f"published architectures (weights: --checkpoint FILE):\n{listing()}")


def prepare_out(out: str, run_settings: RunSettings, resume: bool) -> Dict[str, object]:
    """Claims ``out`` for this run; returns the run's progress record (with ``resume``, what earlier sessions
    finished)."""
    progress = _claim_out(out, run_settings, resume)
    progress.setdefault("seconds", {})
    return progress


def _claim_out(out: str, run_settings: RunSettings, resume: bool) -> Dict[str, object]:
    settings = asdict(run_settings)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file; give a directory (new or empty, or a run to --resume)")
    run_file = os.path.join(out, RUN_FILE)
    if os.path.isfile(run_file):
        saved = read_json(run_file, "start the run again in a new --out directory")
        if isinstance(saved, dict):  # settings added after the run was made count as their defaults
            saved = {**{f.name: f.default for f in fields(RunSettings) if f.default is not MISSING}, **saved}
        if not resume:
            raise UsageError(f"--out {out} holds another run ({saved.get('method')} on {saved.get('model')}); "
                             "pass --resume to continue it or choose another directory")
        if saved != settings:
            diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
            raise UsageError(f"--resume: {out} holds a run with other settings (saved, given): {diff}")
        path = os.path.join(out, PROGRESS_FILE)
        if os.path.isfile(path):
            return read_json(path, "delete it to redo every stage of the run (its files are made again)")
        return {}
    if os.path.isdir(out) and os.listdir(out) and not resume:
        raise UsageError(f"--out {out} is not empty and holds no run; choose an empty or new directory")
    os.makedirs(out, exist_ok=True)
    atomic_write_json(settings, run_file)
    return {}


class Run:
    """One tuning job in stages (FP evaluation, calibration, noise-score curves, tuning, report); each stage
    records its results in progress.json as it finishes, and a resumed run skips what is recorded."""

    def __init__(self, settings: RunSettings, out: str, device: str, cache_dir: str, show_progress: bool,
                 export_format: Optional[str] = None):
        self.s, self.out = settings, out
        self.export_format = export_format
        self.p: Dict[str, object] = {"seconds": {}}  # the progress record; main() loads a resumed one
        self.device, self.cache_dir, self.bars = device, cache_dir, show_progress
        self.method = get_method(settings.method)
        if settings.keep_prob is not None:
            self.method = replace(self.method, keep_prob=settings.keep_prob)
        self.budget = get_budget(settings.budget, batch_size=settings.batch_size)
        if settings.iters:
            it = settings.iters
            self.budget = replace(self.budget, layer_iters=it, block_iters=it, network_iters=it, qat_iters=it,
                                  refresh=max(1, round(it * self.budget.refresh / self.budget.network_iters)))
        try:
            self.model = registry.load(settings.model, checkpoint=settings.checkpoint, anchors=settings.anchors)
        except CheckpointError as exc:
            raise UsageError(f"--checkpoint: {exc}") from None
        if settings.top_k is not None and settings.top_k > len(self.model.heads):
            raise UsageError(f"--top-k {settings.top_k}: {settings.model} has {len(self.model.heads)} heads "
                             f"({', '.join(h.name for h in self.model.heads)})")
        self.spec = parse_data(settings.data)
        try:
            self.model.model_input = model_input_for(self.spec, self.model.model_input, settings.model)
        except ValueError as exc:
            raise UsageError(f"--data: {exc}") from None
        self._images: Optional[torch.Tensor] = None
        self._cache_base = None

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def save_progress(self) -> None:
        atomic_write_json(self.p, self.path(PROGRESS_FILE))

    def save_lanes(self, key: str, xs: torch.Tensor, counts: Optional[torch.Tensor] = None) -> None:
        save_checked({"xs": xs, "counts": counts}, self.path(f"lanes-{key}.pt"))

    def load_lanes(self, key: str) -> torch.Tensor:
        return load_checked(self.path(f"lanes-{key}.pt"), self.redo_hint(key))["xs"]

    def redo_hint(self, stage: str) -> str:
        return (f"delete it and the entry {stage!r} of {self.path(PROGRESS_FILE)}, then --resume to make it again "
                "(or start the run again in a new --out directory)")

    def _eval(self, model, key: str, desc: str, reference=None, device: Optional[str] = None) -> torch.Tensor:
        t = time.perf_counter()
        device = device or self.device
        try:
            r = evaluate(model.to(device), self.evalset, progress=self.bars, desc=desc, reference=reference,
                         device=device)
        finally:
            model.cpu()
        xs = r.pop("xs")
        self.save_lanes(key, xs, r.pop("image_counts"))
        self.p[key] = r
        self.p["seconds"][f"evaluate {key}"] = time.perf_counter() - t
        self.save_progress()
        return xs

    def execute(self) -> int:
        s = self.s
        self.say(f"{s.model} {s.bits.upper()} {self.method.name} ({self.budget.name} budget) on {s.data} -> {self.out}")
        self.evalset = evaluation_set(self.spec, s.test or (self.budget.test_scenes if self.spec.kind == "synth"
                                                            else None), self.model.model_input, TEST_SEED)
        fp_xs = self.evaluate_fp()
        qmodel = self.calibrate(fp_xs)
        curves = self.noise_score_curves()
        if self.method.granularity is not None and "tuned" not in self.p:
            if self.tune(qmodel, curves, fp_xs) is None:
                return 130
        if self.method.granularity is not None and "kept" not in self.p:
            self.keep_better()
        elif self.method.granularity is None and not os.path.isfile(self.path("quantized.pt")):
            save_quantized(qmodel, self.path("quantized.pt"))
        final = load_quantized(self.model, self.path("quantized.pt"), self.redo_hint(
            "kept" if self.method.granularity is not None else "calibrated"))
        if self.export_format:
            self.export_onnx(final, fp_xs)
        self.figures(final, fp_xs, curves)
        self.p["differences"] = self.f1_differences()
        report = write_reports(self.out, asdict(self.s), self.p, self.method, self.budget)
        warning = (self.p.get("kept") or {}).get("warning")
        if warning:
            self.say(f"warning: {warning}")
        print(format_table(report))
        return 0

    def calibration_images(self) -> torch.Tensor:
        """The calibration images, made once per session (only stages that still need them ask)."""
        if self._images is None:
            t = time.perf_counter()
            self._images = calibration_set(self.spec, self.s.calib, self.s.seed, self.model.model_input,
                                           progress=lambda it: _bar(it, "calibration images", self.bars))
            self.p["seconds"].setdefault("calibration images", time.perf_counter() - t)
        return self._images

    def evaluate_fp(self) -> torch.Tensor:
        """Stage 1: the FP model's lanes on the test set (the reference of every distortion score). On
        generated scenes they are cached across runs by weights and test set (--cache-dir)."""
        if "fp" not in self.p:
            cache = self.fp_cache_path()
            t = time.perf_counter()
            hit = _read_cache(cache)
            if hit is not None:
                self.save_lanes("fp", hit["xs"], hit.get("counts"))
                self.p["fp"] = hit["result"]
                self.p["seconds"]["evaluate fp (cached)"] = time.perf_counter() - t
                self.save_progress()
                return self.load_lanes("fp")
            xs = self._eval(self.model, "fp", "FP model")
            if cache:
                save_checked({"xs": xs, "counts": self.load_counts("fp"), "result": self.p["fp"]}, cache)
        return self.load_lanes("fp")

    def fp_cache_path(self) -> Optional[str]:
        return self.stage_cache_path("fp-lanes")

    def stage_cache_path(self, stage: str, *settings) -> Optional[str]:
        """Where a stage's result is cached across runs: generated scenes only (a data set on disk may change
        under its path), keyed by the weights, the model input, the test scene count and seed, the first two
        test images themselves (a change of the scene generator changes them) and the stage's ``settings``."""
        if not self.cache_dir or self.spec.kind != "synth":
            return None
        if self._cache_base is None:
            import hashlib

            h = hashlib.sha1()
            mi = self.model.model_input
            h.update(f"v2-{type(self.model).__name__}-{self.evalset.count}-{TEST_SEED}-{mi.size}-{mi.crop_top}-"
                     f"{mi.frame.name}-{self.device}".encode())
            for k, v in sorted(self.model.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            images, _ = self.evalset.items(0, min(2, self.evalset.count))
            h.update(images.contiguous().numpy().tobytes())
            self._cache_base = h
        h = self._cache_base.copy()
        h.update(repr((stage,) + settings).encode())
        return os.path.join(self.cache_dir, f"{stage}-{self.s.model}-{h.hexdigest()[:20]}.pt")

    def calibrate(self, fp_xs: torch.Tensor):
        """Stage 2: the converted model with calibrated steps (the start of every tuning method). On generated
        scenes the calibrated model and its test-set lanes are cached across runs (methods sharing the
        calibration observers share the entry)."""
        cache = None if "calibrated" in self.p else self.stage_cache_path(
            "calibrated", self.s.bits, self.s.weight_observer or self.method.weight_observer, self.method.act_observer,
            self.s.first_last_8bit, self.s.calib, self.s.seed)
        hit = _read_cache(cache)
        if hit is not None:
            save_checked(hit["model"], self.path("calibrated.pt"))
            self.save_lanes("calibrated", hit["xs"], hit.get("counts"))
            self.p["calibrated"] = hit["result"]
            self.p["seconds"]["calibration + evaluation (cached)"] = 0.0
            self.save_progress()
        if "calibrated" not in self.p:
            images = self.calibration_images()
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qmodel = quantize_model(self.model, self.s.bits, first_last_8bit=self.s.first_last_8bit,
                                        weight_observer=self.s.weight_observer or self.method.weight_observer,
                                        act_observer=self.method.act_observer)
            calibrate(qmodel.to(self.device), images.to(self.device), progress=self.bars)
            qmodel.cpu()
            save_quantized(qmodel, self.path("calibrated.pt"))
            self.p["seconds"]["calibration"] = time.perf_counter() - t
            xs = self._eval(qmodel, "calibrated", "calibrated model", reference=fp_xs)
            if cache:
                saved = load_checked(self.path("calibrated.pt"), self.redo_hint("calibrated"))
                save_checked({"model": saved, "xs": xs, "counts": self.load_counts("calibrated"),
                              "result": self.p["calibrated"]}, cache)
        return load_quantized(self.model, self.path("calibrated.pt"), self.redo_hint("calibrated"))

    def noise_score_curves(self) -> Optional[Dict[str, NoiseScoreCurve]]:
        """Stage 3 (methods with Sensitivity Aware Selection): one noise-score curve per head."""
        if not self.method.select:
            return None
        if "curves" not in self.p:
            images = self.calibration_images()
            n = min(self.budget.curve_images, len(images))
            curves, secs, cached = load_or_build_curves(
                self.model, images[:n], self.cache_dir or None, self.budget.curve_levels, self.budget.curve_reruns,
                self.s.seed, self.bars, self.s.model)
            self.p["curves"] = {k: asdict(v) for k, v in curves.items()}
            self.p["seconds"]["noise-score curves" + (" (cached)" if cached else "")] = secs
            self.save_progress()
        return {k: NoiseScoreCurve(**v) for k, v in self.p["curves"].items()}

    def tune(self, qmodel, curves, fp_xs: torch.Tensor):
        """Stage 4 (tuning methods): reconstruction from the last checkpoint; None when interrupted."""
        s = self.s
        if self.method.granularity == "qat":
            rec = QuantizationAwareTraining(qmodel.to(self.device), self.budget, seed=s.seed,
                                            checkpoint=self.path("checkpoint.pt"), progress=self.bars,
                                            device=self.device)
        else:
            rec = Reconstructor(qmodel.to(self.device), self.method, self.budget,
                                self.calibration_images().to(self.device), seed=s.seed,
                                checkpoint=self.path("checkpoint.pt"), curves=curves, top_k=s.top_k, lam=s.lam,
                                progress=self.bars, overrides={k: v for k, v in (("v_lr", s.v_lr), ("step_lr", s.step_lr))
                                                               if v is not None})
        if os.path.isfile(self.path("checkpoint.pt")):
            rec.load_checkpoint(self.path("checkpoint.pt"))
            self.say(f"resuming tuning from {self.path('checkpoint.pt')}")
        try:
            result = rec.run()
        except Interrupted as exc:
            self.say(f"{exc}\ncontinue with: python -m selfocus_ext.tune --out {self.out} --resume (and the same "
                     "arguments)")
            return None
        qmodel = qmodel.cpu()
        save_quantized(qmodel, self.path("tuned.pt"))
        self.p["seconds"]["tuning"] = sum(result["unit_seconds"].values())
        self.p["selection"] = result["history"]
        self.p["unit_seconds"] = result["unit_seconds"]
        self.p["iterations"] = result["iterations"]
        self._eval(qmodel, "tuned", "tuned model", reference=fp_xs)
        os.remove(self.path("checkpoint.pt"))
        return qmodel

    def keep_better(self) -> None:
        """Stage 5 (tuning methods): the start (calibrated) and the tuned model measured on held-out
        calibration-like images against the FP model, without labels; quantized.pt is the tuned model unless
        its distortion is above the start's (--keep-tuned: the tuned model regardless)."""
        from .workflow import heldout
        from .workflow.data import heldout_set

        t = time.perf_counter()
        n = self.budget.heldout_images
        images = heldout_set(self.spec, n, self.s.calib, self.s.seed, self.model.model_input)
        ref = heldout.reference(self.model, images, device=self.device)
        start = heldout.score(load_quantized(self.model, self.path("calibrated.pt"), self.redo_hint("calibrated")),
                              ref, device=self.device)
        tuned_path = self.path("tuned.pt")
        if not os.path.isfile(tuned_path) and os.path.isfile(self.path("quantized.pt")):
            os.replace(self.path("quantized.pt"), tuned_path)  # a run tuned before the check existed
        tuned = heldout.score(load_quantized(self.model, tuned_path, self.redo_hint("tuned")), ref, device=self.device)
        choice = heldout.choose(start, tuned, self.s.keep_tuned)
        stage = "tuned" if choice["kept"] == "tuned" else "calibrated"
        save_checked(load_checked(self.path(f"{stage}.pt"), self.redo_hint(stage)), self.path("quantized.pt"))
        self.p["kept"] = {**choice, "images": n, "start": start.to_dict(), "tuned": tuned.to_dict()}
        self.p["seconds"]["held-out check"] = time.perf_counter() - t
        self.save_progress()

    def f1_differences(self) -> List[Dict[str, object]]:
        """Each F1 difference of the report with the paired-bootstrap interval of the test set."""
        from .workflow.bootstrap import paired_difference

        pairs = [("calibrated", "fp"), ("tuned", "calibrated"), ("tuned", "fp")]
        pairs += [(k, "deployable") for k in sorted(self.p) if k.startswith("onnx-")]
        if "deployable" in self.p:
            pairs.append(("deployable", self.returned()))
        out = []
        for b, a in pairs:
            if a not in self.p or b not in self.p:
                continue
            ca, cb = self.load_counts(a), self.load_counts(b)
            if ca is None or cb is None or ca.shape != cb.shape or len(ca) == 0:
                continue
            r = paired_difference(ca.numpy(), cb.numpy(), self.evalset.metric)
            out.append({"a": a, "b": b, **r})
        return out

    def returned(self) -> str:
        """The stage whose model quantized.pt holds: "tuned" when the held-out check kept it, else "calibrated"."""
        return "tuned" if self.p.get("kept", {}).get("kept") == "tuned" else "calibrated"

    def load_counts(self, key: str) -> Optional[torch.Tensor]:
        return load_checked(self.path(f"lanes-{key}.pt"), self.redo_hint(key)).get("counts")

    def export_onnx(self, qmodel, fp_xs: torch.Tensor) -> None:
        """Stage 6 (--export onnx): model.onnx, scored in onnxruntime on the test set."""
        from .export import OnnxLaneModel, export_onnx, open_session

        key = f"onnx-{self.export_format}"
        if key in self.p:
            return
        if "deployable" not in self.p:
            # the PyTorch model with the export's int32 biases: what the runtime should reproduce
            from .export import freeze

            self._eval(freeze(qmodel.cpu())[0], "deployable", "deployable model (int32 biases)", reference=fp_xs,
                       device="cpu")
        t = time.perf_counter()
        info = export_onnx(qmodel.cpu(), self.path("model.onnx"), fmt=self.export_format, force=True,
                           metadata={"model": self.s.model, "method": self.s.method})
        self.p["seconds"]["onnx export"] = time.perf_counter() - t
        session = open_session(self.path("model.onnx"))
        runtime = OnnxLaneModel(session, self.model)
        self._eval(runtime, key, f"onnxruntime ({self.export_format})", reference=fp_xs, device="cpu")
        self.p[key].update(format=self.export_format, optimization_level=session.optimization_level,
                           bytes=info["bytes"])
        self.save_progress()

    def figures(self, qmodel, fp_xs: torch.Tensor, curves) -> None:
        q_xs = self.load_lanes(self.returned())
        if (curves or self.p.get("selection")) and not plots.charts_available():
            self.say(f"curves.png and selection.png skipped: the line charts need matplotlib ({plots.PLOTS_HINT})")
        elif curves or self.p.get("selection"):
            if curves:
                plots.save_curves_figure(self.path("curves.png"), curves)
            if self.p.get("selection"):
                plots.save_selection_figure(self.path("selection.png"), self.p["selection"])
        # the four test images where quantization moved the lanes most (and the first image, for reference)
        from .workflow.evaluation import per_image_distortion

        d = per_image_distortion(fp_xs, q_xs, torch.from_numpy(self.model.model_input.frame.ys))
        picks = [0] + [int(i) for i in torch.argsort(d, descending=True)[:3] if int(i) != 0][:3]
        for rank, i in enumerate(picks):
            _, labels = self.evalset.items(i, i + 1)
            img = plots.lanes_figure(self.evalset.raw(i), self.model.model_input,
                                     {"ground truth": labels[0]["xs"], "FP": fp_xs[i].numpy(),
                                      "quantized": q_xs[i].numpy()})
            plots.save_png(self.path(f"lanes-{rank}-image{i}.png"), img)


def _read_cache(path: Optional[str]):
    """A cached stage result, or None (no cache, no entry, or an unreadable one: the stage runs again)."""
    if not path or not os.path.isfile(path):
        return None
    try:
        return load_checked(path, "")
    except DamagedFileError:
        return None


def _bar(it, desc, show):
    from tqdm import tqdm

    return tqdm(it, desc=desc, unit="img", disable=not show)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_models:
        print(list_models())
        return 0
    from .workflow.memory import keep_freed_buffers

    keep_freed_buffers()  # fewer page faults in the tuning loop; results unchanged
    try:
        settings = settings_from_args(args)
        out = args.out or os.path.join("runs", f"{args.model}-{settings.bits}-{args.method}-{args.budget}")
        if args.export:
            from .export.onnx_graph import require_onnx

            try:
                require_onnx()
                import onnxruntime  # noqa: F401
            except Exception as exc:
                raise UsageError(f"--export onnx: {exc}" if "pip install" in str(exc) else
                                 "--export onnx: onnxruntime is missing (pip install -e .[export])") from None
        run = Run(settings, out, args.device, args.cache_dir, not args.quiet,
                  args.export_format if args.export else None)  # checks the model before --out
        run.p = prepare_out(out, settings, args.resume)
    except (UsageError, DamagedFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return run.execute()
    except DamagedFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; what finished is saved in {out} (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
