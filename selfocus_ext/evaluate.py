"""Evaluate lane predictions stored in the real data set layouts.

    python -m selfocus_ext.evaluate culane --pred DIR --gt ROOT [--list FILE ...] [--iou 0.5] [--mf1]
                                           [--matcher official|exact]
    python -m selfocus_ext.evaluate tusimple --pred FILE --gt FILE
    python -m selfocus_ext.evaluate --model NAME [--checkpoint FILE] [--quantized FILE]
                                    [--data synth | culane:ROOT | tusimple:ROOT] [--write-lines DIR]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import List, Optional

from tqdm import tqdm

from .data import culane_files
from .metrics import culane, tusimple


def check_culane_args(args) -> None:
    """One clear line for each out-of-range argument, before any file is read."""
    if not (math.isfinite(args.iou) and 0.0 <= args.iou < 1.0):
        raise ValueError(f"--iou must be in [0, 1) (a match needs IoU > it), got {args.iou}")
    if not 2 <= args.lane_width <= 1024:
        raise ValueError(f"--lane-width must be in 2..1024 px, got {args.lane_width}")
    for name in ("width", "height"):
        if not 1 <= getattr(args, name) <= 65536:
            raise ValueError(f"--{name} must be in 1..65536 px, got {getattr(args, name)}")
    if not os.path.isdir(args.pred):
        raise ValueError(f"--pred: no directory {args.pred}")
    if not os.path.isdir(args.gt):
        raise ValueError(f"--gt: no directory {args.gt}")


def run_culane(args) -> int:
    check_culane_args(args)
    lists = args.list or culane_files.default_lists(args.gt)
    thresholds = culane.MF1_THRESHOLDS if args.mf1 else (args.iou,)
    if args.iou not in thresholds:
        thresholds = tuple(sorted(set(thresholds) | {args.iou}))
    total_images = sum(len(culane_files.read_list(f)) for f in lists)
    scenarios = {}
    with tqdm(total=total_images, desc="reading lanes", unit="img", disable=args.quiet) as bar:
        for list_file in lists:
            pairs = culane_files.load_pairs(args.pred, args.gt, list_file, bar, culane.MAX_LANES[args.matcher])
            scenarios[culane_files.scenario_name(list_file)] = pairs
    result = culane.evaluate_scenarios(scenarios, thresholds, args.width, args.height, args.lane_width, args.matcher)
    print(culane.format_table(result, args.iou))
    if args.mf1:
        print(f"mF1 (IoU 0.50:0.05:0.95), total: {culane.mean_f1(result['total']) * 100:.2f}")
    return 0


def run_tusimple(args) -> int:
    r = tusimple.evaluate_files(args.pred, args.gt)
    print(f"Accuracy {r.accuracy:.6f}\nFP {r.fp:.6f}\nFN {r.fn:.6f}\nF1 {r.f1:.6f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m selfocus_ext.evaluate", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="dataset", required=True)
    c = sub.add_parser("culane", help="CULane: precision, recall, F1 per scenario list")
    c.add_argument("--pred", required=True, help="directory mirroring the image paths with .lines.txt predictions")
    c.add_argument("--gt", required=True, help="CULane root (images' .lines.txt labels and list/)")
    c.add_argument("--list", nargs="+", help="list files (default: ROOT/list/test_split/test*_*.txt or ROOT/list/test.txt)")
    c.add_argument("--iou", type=float, default=0.5, help="IoU threshold of a true positive (default 0.5)")
    c.add_argument("--mf1", action="store_true", help="also report mF1 over IoU 0.50:0.05:0.95")
    c.add_argument("--matcher", choices=culane.MATCHERS, default="official",
                   help="official: the official tool's matching, count for count (default); exact: the "
                   "maximum-total-IoU matching")
    c.add_argument("--lane-width", type=int, default=30)
    c.add_argument("--width", type=int, default=1640)
    c.add_argument("--height", type=int, default=590)
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(run=run_culane)
    t = sub.add_parser("tusimple", help="TuSimple: accuracy, FP, FN, F1")
    t.add_argument("--pred", required=True, help="JSON-lines predictions (raw_file, lanes, run_time)")
    t.add_argument("--gt", required=True, help="JSON-lines ground truth (raw_file, lanes, h_samples)")
    t.set_defaults(run=run_tusimple)
    return p


def model_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m selfocus_ext.evaluate --model",
                                description="Evaluate a zoo model, FP or quantized (a file saved by the tune command)")
    p.add_argument("--model", required=True, help="zoo or published model name")
    p.add_argument("--checkpoint", help="float weights: a published model's checkpoint (required for one)")
    p.add_argument("--anchors", help="LaneATT (published): the implementation's anchor frequency file")
    p.add_argument("--quantized", help="quantized model file (quantized.pt of a tune run)")
    p.add_argument("--data", help="synth, culane:ROOT or tusimple:ROOT (default synth for a zoo model; a published "
                   "model needs it named)")
    p.add_argument("--test", type=int, help="test images (default: 1000 generated scenes; all of a data set; N of a "
                   "data set is a seeded choice spread over its test list)")
    p.add_argument("--write-lines", metavar="DIR", help="also write the predictions: one .lines.txt per CULane test "
                   "image under DIR (mirroring the image paths; a published model's as its implementation writes "
                   "them), or DIR/predictions.json for TuSimple")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_model)
    return p


def run_model(args) -> int:
    from .models import registry
    from .quant import load_quantized
    from .workflow.data import TEST_SEED, evaluation_set, model_input_for, parse_data
    from .workflow.evaluation import evaluate
    from .workflow.lines_output import LinesWriter

    if args.model not in registry.available():
        raise ValueError(f"--model: unknown model {args.model!r}; available: {', '.join(registry.available())}")
    if args.quantized and not os.path.isfile(args.quantized):
        raise ValueError(f"--quantized: no file {args.quantized}")
    published = args.model in registry.published_names()
    if published and args.data is None:
        raise ValueError(f"--data: {args.model} is a published architecture; score it on its data set with "
                         "--data culane:ROOT (or name --data synth to score it on generated scenes)")
    spec = parse_data(args.data or "synth")
    if args.write_lines and spec.kind == "synth":
        raise ValueError("--write-lines: predictions are written beside a data set's images; give --data "
                         "culane:ROOT or tusimple:ROOT")
    if args.write_lines and os.path.isfile(args.write_lines):
        raise ValueError(f"--write-lines: {args.write_lines} is a file; give a directory")
    if published and args.checkpoint is None and not args.quantized:
        raise ValueError(f"--checkpoint: {args.model} is a published architecture and ships no weights")
    model = registry.load(args.model, pretrained=not published or args.checkpoint is not None,
                          checkpoint=args.checkpoint, anchors=args.anchors)
    model.model_input = model_input_for(spec, model.model_input, args.model)
    if args.quantized:
        try:
            model = load_quantized(model, args.quantized)
        except (KeyError, RuntimeError) as exc:
            raise ValueError(f"--quantized: {args.quantized} is not a quantized {args.model}: {exc}") from None
    model = model.to(args.device)
    evalset = evaluation_set(spec, args.test or (1000 if spec.kind == "synth" else None), model.model_input, TEST_SEED)
    writer = LinesWriter(model, args.write_lines, evalset.metric) if args.write_lines else None
    r = evaluate(model, evalset, progress=not args.quiet, device=args.device, on_outputs=writer)
    print(f"{args.model}{' (quantized)' if args.quantized else ''} on {spec}: F1 {r['f1']:.2f}")
    if writer is not None:
        where = writer.close()
        score = (f"python -m selfocus_ext.evaluate culane --pred {where} --gt {spec.root}" if spec.kind == "culane"
                 else f"python -m selfocus_ext.evaluate tusimple --pred {where} --gt GT_JSON")
        print(f"wrote predictions of {writer.written} images to {where} (score them: {score})")
    for k, v in r.get("per_scenario", {}).items():
        print(f"  {k:<8} {'-' if v is None else f'{v:.2f}'}")
    if "accuracy" in r:
        print(f"  accuracy {r['accuracy']:.2f}  FP {r['fp']:.4f}  FN {r['fn']:.4f}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = model_parser() if any(a == "--model" or a.startswith("--model=") for a in argv) else build_parser()
    args = parser.parse_args(argv)
    from .workflow.memory import keep_freed_buffers

    keep_freed_buffers()  # fewer page faults between batches; results unchanged
    try:
        return args.run(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
