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

import os
import sys
from typing import List, Optional

from .cli.tune_args import build_parser, list_models, parse_memory, settings_from_args
from .export import require_onnx
from .files import DamagedFileError
from .workflow.job import TuneJob
from .workflow.memory import keep_freed_buffers
from .workflow.pipeline import execute
from .workflow.run_dir import RunSettings, UsageError, claim

__all__ = ["RunSettings", "UsageError", "main"]


def check_export_available() -> None:
    try:
        require_onnx()
        import onnxruntime  # noqa: F401
    except Exception as exc:
        raise UsageError(f"--export onnx: {exc}" if "pip install" in str(exc) else
                         "--export onnx: onnxruntime is missing (pip install -e .[export])") from None


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_models:
        print(list_models())
        return 0
    keep_freed_buffers()  # fewer page faults in the tuning loop; results unchanged
    try:
        settings = settings_from_args(args)
        out = args.out or os.path.join("runs", f"{args.model}-{settings.bits}-{args.method}-{args.budget}")
        if args.export:
            check_export_available()
        job = TuneJob.prepare(settings, args.device, args.cache_dir, not args.quiet,
                              args.export_format if args.export else None,  # checks the model before --out
                              curves_memory=parse_memory(args.curves_memory),
                              tuning_memory=parse_memory(args.tuning_memory, "--tuning-memory"))
        job.run = claim(out, settings, args.resume)
    except (UsageError, DamagedFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return execute(job)
    except DamagedFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; what finished is saved in {out} (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
