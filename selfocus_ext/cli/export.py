"""Export a quantized model to ONNX.

    python -m selfocus_ext.export RUN_DIR_OR_quantized.pt --out model.onnx [--format qdq|qcdq] [--force]
        [--model NAME] [--bias int32|float] [--check-scenes N]

RUN_DIR: a directory written by ``python -m selfocus_ext.tune`` (its quantized.pt and run.json); a .pt file
beside a run.json needs nothing more, any other quantized file needs ``--model``. ``--check-scenes N`` runs
the exported model in onnxruntime on N generated test scenes and prints its F1 beside the PyTorch quantized
model's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import List, Optional, Tuple

from ..export import BIASES, FORMATS, ExportError, export_onnx
from ..models import registry
from ..quant import load_quantized
from ..workflow.export_check import runtime_f1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m selfocus_ext.export", description=__doc__.splitlines()[0])
    p.add_argument("source", help="a tune run directory or a quantized.pt")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--format", default="qdq", choices=FORMATS, help="qdq (int4/int8 types, default) or qcdq "
                   "(8-bit containers with a Clip to the low-bit range)")
    p.add_argument("--bias", default="int32", choices=BIASES, help="convolution biases as int32 on the "
                   "accumulator grid (default) or in float")
    p.add_argument("--model", help="zoo model name (default: read from the run's run.json)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--check-scenes", type=int, default=0, metavar="N",
                   help="score the exported model in onnxruntime on N generated test scenes")
    return p


def resolve_source(source: str, model: Optional[str]) -> Tuple[str, str, dict]:
    """(quantized file, model name, the float weights the run quantized: checkpoint and anchors, if any) from a
    run directory or a file."""
    if os.path.isdir(source):
        path = os.path.join(source, "quantized.pt")
        if not os.path.isfile(path):
            raise ExportError(f"source: {source} holds no quantized.pt (is it a finished tune run?)")
        run_dir = source
    elif os.path.isfile(source):
        path, run_dir = source, os.path.dirname(os.path.abspath(source))
    else:
        raise ExportError(f"source: no file or directory {source}")
    run_file = os.path.join(run_dir, "run.json")
    settings = {}
    if os.path.isfile(run_file):
        try:
            with open(run_file) as f:
                settings = json.load(f)
            if not isinstance(settings, dict):
                raise TypeError
        except (OSError, ValueError, TypeError):
            settings = {}
    if model is None:
        if "model" not in settings:
            raise ExportError(f"source: {path} has no tune run's run.json beside it; name the model with --model")
        model = settings["model"]
    same = settings.get("model") == model
    weights = {k: settings.get(k) for k in ("checkpoint", "anchors")} if same else {}
    return path, model, {k: v for k, v in weights.items() if v}


def load_source(path: str, name: str, weights: Optional[dict] = None):
    """(float model, quantized model). A published model's float weights are its run's checkpoint; without
    one (a file moved away from its run) the float model is the bare architecture."""
    if name not in registry.available():
        raise ExportError(f"--model: unknown model {name!r}; available: {', '.join(registry.available())}")
    published = name in registry.published_names()
    weights = dict(weights or {})
    if not published or any(not os.path.isfile(p) for p in weights.values()):
        weights = {}
    checkpoint = weights.get("checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            float_model = registry.load(name, pretrained=not published or checkpoint is not None, **weights)
            # the quantized model's skeleton at the float model's input size (a checkpoint may record another)
            size = tuple(float_model.model_input.size) if published else None
            return float_model, load_quantized(registry.load(name, pretrained=not published, input_size=size), path)
    except (ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"source: {path} is not a quantized {name} model ({first[:300]})") from None


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.check_scenes < 0:
            raise ExportError(f"--check-scenes: expected 0 or more scenes, got {args.check_scenes}")
        path, name, weights = resolve_source(args.source, args.model)
        float_model, qmodel = load_source(path, name, weights)
        info = export_onnx(qmodel, args.out, fmt=args.format, bias=args.bias, force=args.force,
                           metadata={"model": name})
        print(f"wrote {info['path']} ({info['bytes'] / 1e6:.2f} MB, {args.format}, {info['layers']} quantized layers, "
              f"outputs {', '.join(info['outputs'])})")
        if args.check_scenes:
            r = runtime_f1(qmodel, float_model, args.out, args.check_scenes)
            print(f"F1 on {args.check_scenes} generated scenes: onnxruntime {r['onnx_f1']:.2f} "
                  f"({r['optimization_level']} optimisation), PyTorch quantized {r['torch_f1']:.2f}")
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
