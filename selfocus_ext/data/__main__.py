"""Generate lane data in the real layouts.

    python -m selfocus_ext.data generate --out DIR --frame culane|tusimple --n N --seed S [--split test] [--force]

A root may hold both splits; writing a split that the root already holds (its list or label file) needs
--force, since the new scenes replace the old ones.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tqdm import tqdm

from . import layouts, synth


def existing_split_files(root: str, frame: str, split: str) -> List[str]:
    """The files of ``split`` that generating it into ``root`` would overwrite."""
    if frame == "culane":
        names = [os.path.join("list", f"{split}.txt")]
        if split == "test":
            names.append(os.path.join("list", "test_split"))
    else:
        names = ["test_label.json" if split == "test" else "label_data_synth.json"]
    return [n for n in names if os.path.exists(os.path.join(root, n))]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m selfocus_ext.data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="render scenes and write them as a CULane or TuSimple tree")
    g.add_argument("--out", required=True, help="output directory (the data set root)")
    g.add_argument("--frame", choices=("culane", "tusimple"), default="culane")
    g.add_argument("--n", type=int, required=True, help="number of scenes")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--split", choices=("train", "test"), default="test")
    g.add_argument("--scenario", choices=synth.SCENARIOS, help="only this scenario (default: the CULane test mix)")
    g.add_argument("--force", action="store_true", help="replace a split the root already holds")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.n <= 0:
        p.error("--n must be positive")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        p.error(f"--out {args.out} is a file; give a directory")
    held = existing_split_files(args.out, args.frame, args.split)
    if held and not args.force:
        p.error(f"--out {args.out} already holds a {args.frame} {args.split} split ({', '.join(held)}); "
                "pass --force to replace it, or choose another directory")
    mix = {args.scenario: 1.0} if args.scenario else None
    write = layouts.write_culane if args.frame == "culane" else layouts.write_tusimple
    with tqdm(total=args.n, desc=f"{args.frame} {args.split}", unit="scene", disable=args.quiet) as bar:
        paths = write(args.out, args.n, seed=args.seed, split=args.split, mix=mix, progress=bar)
    print(f"wrote {len(paths)} {args.frame} {args.split} scenes under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
