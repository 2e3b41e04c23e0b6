"""Evaluate lane predictions stored in the real data set layouts.

    python -m selfocus_ext.evaluate culane --pred DIR --gt ROOT [--list FILE ...] [--iou 0.5] [--mf1]
    python -m selfocus_ext.evaluate tusimple --pred FILE --gt FILE
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tqdm import tqdm

from .eval import culane, culane_files, tusimple


def run_culane(args) -> int:
    lists = args.list or culane_files.default_lists(args.gt)
    thresholds = culane.MF1_THRESHOLDS if args.mf1 else (args.iou,)
    if args.iou not in thresholds:
        thresholds = tuple(sorted(set(thresholds) | {args.iou}))
    total_images = sum(len(culane_files.read_list(f)) for f in lists)
    scenarios = {}
    with tqdm(total=total_images, desc="reading lanes", unit="img", disable=args.quiet) as bar:
        for list_file in lists:
            scenarios[culane_files.scenario_name(list_file)] = culane_files.load_pairs(args.pred, args.gt, list_file, bar)
    result = culane.evaluate_scenarios(scenarios, thresholds, args.width, args.height, args.lane_width)
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


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
