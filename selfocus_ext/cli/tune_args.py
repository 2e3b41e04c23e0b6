"""The tune command's arguments: the parser, and their checks (one clear error each) into RunSettings."""
from __future__ import annotations

import argparse
import math
import os
from typing import Optional

import torch

from ..models import registry
from ..models.published import catalog, listing
from ..quant import parse_bits
from ..quant.observers import OBSERVERS
from ..recon import BUDGETS, METHODS, get_budget, get_method
from ..recon import config as rconfig
from ..workflow.data import DATA_HELP, parse_data, require_training_split
from ..workflow.run_dir import RunSettings, UsageError

MAX_CALIB = 100_000
DESCRIPTION = "Quantize a lane model end to end: calibrate, tune, evaluate, report, save."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m selfocus_ext.tune", description=DESCRIPTION)
    p.add_argument("--model", default="ganet-s", help="zoo or published model (--list-models shows them)")
    p.add_argument("--checkpoint", help="weights to quantize: for a published model (e.g. scnn-r18) a checkpoint "
                   "file of the implementation it comes from; for a zoo model a file saved by this package")
    p.add_argument("--anchors", help="LaneATT (published): the anchor frequency file its checkpoint was trained "
                   "with (the implementation's data/culane_anchors_freq.pt)")
    p.add_argument("--list-models", action="store_true", help="list the zoo and the published models, then exit")
    p.add_argument("--bits", default="w4a4", help="weight and activation bits, e.g. w4a4, w8a4 (2-8 bits)")
    p.add_argument("--method", default="sf", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--data", help=f"{DATA_HELP} (default synth for a zoo model; a published model needs it named)")
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
    p.add_argument("--matmul-bits", type=int, help="also quantize both operands of every product of two "
                   "activations (attention, dynamic convolutions) at these bits, per tensor (default: they stay "
                   "float; docs/quant.md lists them per family)")
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
    p.add_argument("--curves-memory", default="2G", help="noise the noise-score curves hold at once, e.g. 512M "
                   "or 4G (default 2G): a head whose noisy copies need more is done in chunks, to the same curve")
    p.add_argument("--tuning-memory", default="6G", help="activations the network-wise methods keep for one "
                   "backward pass, e.g. 2G (default 6G): a batch whose forward needs more runs as micro-batches "
                   "whose gradients add up (the same step to float rounding; real-size segmentation models)")
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
    published = args.model in registry.published_names()
    if published and args.data is None:
        raise UsageError(f"--data: {args.model} is a published architecture; calibrate and test it on its data set "
                         "with --data culane:ROOT (or name --data synth to run it on generated scenes)")
    try:
        data = parse_data(args.data or "synth")
        require_training_split(data)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if get_method(args.method).granularity == "qat" and published:
        raise UsageError(f"--method {args.method}: quantization-aware training needs the model's training targets "
                         f"and loss, which the published {args.model} does not have here; use a post-training "
                         "method (e.g. qdrop or sf)")
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
    if args.matmul_bits is not None and not 2 <= args.matmul_bits <= 8:
        raise UsageError(f"--matmul-bits must be an integer in 2..8, got {args.matmul_bits}")
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
                       anchors=anchors, matmul_bits=args.matmul_bits)


def parse_memory(text: str, flag: str = "--curves-memory") -> int:
    """"512M", "4G", "1.5G" or a number of bytes -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = str(text).strip().upper().rstrip("B")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 1 << 20):
        raise UsageError(f"{flag}: expected a size of at least 1M such as 512M or 4G, got {text!r}")
    return int(value)


def check_checkpoint(model: str, checkpoint: Optional[str]) -> Optional[str]:
    """The checkpoint's absolute path; a published model needs one (its weights are the user's)."""
    if checkpoint is None:
        if model in {e.name for e in catalog()}:
            raise UsageError(f"--checkpoint: {model} is a published architecture and ships no weights; pass "
                             "--checkpoint FILE (a checkpoint of the implementation it comes from)")
        return None
    if not os.path.isfile(checkpoint):
        raise UsageError(f"--checkpoint: no file {checkpoint}")
    return os.path.abspath(checkpoint)


def check_anchors(model: str, anchors: Optional[str], checkpoint: Optional[str]) -> Optional[str]:
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
    return (f"zoo (trained on generated scenes, weights shipped): {', '.join(n for n in registry.available() if n not in registry.published_names())}\n\n"
            f"published architectures (weights: --checkpoint FILE):\n{listing()}")
