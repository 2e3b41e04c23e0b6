"""Generate lane data in the real layouts.

    python -m selfocus_ext.data generate --out DIR --frame culane|tusimple --n N --seed S [--split test]
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tqdm import tqdm

from . import layouts, synth


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
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.n <= 0:
        p.error("--n must be positive")
    mix = {args.scenario: 1.0} if args.scenario else None
    write = layouts.write_culane if args.frame == "culane" else layouts.write_tusimple
    with tqdm(total=args.n, desc=f"{args.frame} {args.split}", unit="scene", disable=args.quiet) as bar:
        paths = write(args.out, args.n, seed=args.seed, split=args.split, mix=mix, progress=bar)
    print(f"wrote {len(paths)} {args.frame} {args.split} scenes under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
