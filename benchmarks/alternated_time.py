"""Method times measured alike: per entry (zoo model, bits) the methods run in turn, A/B/A/B, from one
calibrated start in one process, each timed for everything it needs beyond that start (Selective Focus: its
noise-score curves and its tuning, whose FP pass is inside; the block-wise methods: their tuning, captures and
PD-Quant's corrections inside). Time ratios come from the same round, so a day's drift cancels; the spread over
rounds is shown. Records are appended to a JSON file (a finished round is kept if a later one is interrupted).

    python benchmarks/alternated_time.py --entries ganet-s:w4a4 condlane-s:w4a4 --methods sf qdrop --rounds 2
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
import warnings
from collections import defaultdict
from typing import Dict, List

import torch

from selfocus_ext import models
from selfocus_ext.api import noise_score_curves, quantize_, tune_
from selfocus_ext.data import calibration_images
from selfocus_ext.recon import get_budget, get_method

OUT = "benchmarks/results/alternated-times.json"


def parse_entry(text: str) -> tuple:
    model, sep, bits = text.partition(":")
    if not sep or model not in models.available():
        raise SystemExit(f"--entries: expected MODEL:BITS with a zoo model (e.g. ganet-s:w4a4), got {text!r}")
    return model, bits


def time_method(start: torch.nn.Module, method: str, budget: str, seed: int) -> Dict[str, float]:
    """One run of ``method`` on a copy of ``start``: seconds of its curves (if it selects) and of its tuning."""
    q = copy.deepcopy(start)
    images = start.calibration_images
    q.calibration_images = images
    b = get_budget(budget)
    t = time.perf_counter()
    curves = noise_score_curves(q, images, b, seed) if get_method(method).select else None
    curves_s = time.perf_counter() - t
    t = time.perf_counter()
    result = tune_(q, method, b, seed=seed, curves=curves, progress=False)
    tuning_s = time.perf_counter() - t
    return {"curves_seconds": curves_s, "tuning_seconds": tuning_s, "seconds": curves_s + tuning_s,
            "iterations": result.iterations}


def summary(records: List[dict]) -> List[str]:
    """Per entry and day: each method's times over its rounds, and each method's ratio to the first method
    of the run within the same round (median and range)."""
    by = defaultdict(list)
    for r in records:
        by[(r["model"], r["bits"], r["budget"], r["date"], r["machine"])].append(r)
    lines = ["| model | bits | budget | date | method | seconds per round | median | ratio to SF per round | "
             "ratio median (range) | machine load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (model, bits, budget, date, machine), rs in sorted(by.items()):
        rounds = defaultdict(dict)
        for r in rs:
            rounds[r["round"]][r["method"]] = r
        methods = sorted({r["method"] for r in rs}, key=lambda m: (m != "sf", m))
        for m in methods:
            secs = [rounds[k][m]["seconds"] for k in sorted(rounds) if m in rounds[k]]
            ratios = [rounds[k][m]["seconds"] / rounds[k]["sf"]["seconds"] for k in sorted(rounds)
                      if m in rounds[k] and "sf" in rounds[k]]
            loads = [max(rounds[k][m]["load_start"], rounds[k][m]["load_end"]) for k in sorted(rounds) if m in rounds[k]]
            ratio = (f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if ratios and m != "sf"
                     else "-")
            lines.append(f"| {model} | {bits.upper()} | {budget} | {date} | {m} | "
                         f"{', '.join(f'{s:.0f}' for s in secs)} | {statistics.median(secs):.0f} | "
                         f"{', '.join(f'{x:.2f}' for x in ratios) if m != 'sf' else '-'} | {ratio} | "
                         f"max load {max(loads):.1f} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", nargs="+", default=["ganet-s:w4a4"], help="MODEL:BITS")
    ap.add_argument("--methods", nargs="+", default=["sf", "qdrop"], help="run in this order in every round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--budget", default="f0.01", help="every method's budget (the grid's fraction)")
    ap.add_argument("--calib", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    for m in a.methods:
        try:
            get_method(m)
        except ValueError as exc:
            ap.error(f"--methods: {exc}")
    entries = [parse_entry(e) for e in a.entries]
    records = json.load(open(a.out)) if os.path.isfile(a.out) else []
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    for model, bits in entries:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = quantize_(models.load(model), bits, calibration_images(a.calib, seed=a.seed))
        for rnd in range(a.rounds):
            for m in a.methods:
                load0 = os.getloadavg()[0]
                r = time_method(start, m, a.budget, a.seed)
                records.append(dict(model=model, bits=bits, method=m, round=rnd, budget=a.budget, seed=a.seed,
                                    calib=a.calib, load_start=load0, load_end=os.getloadavg()[0],
                                    date=time.strftime("%Y-%m-%d"), time=time.strftime("%H:%M"), machine=machine,
                                    threads=torch.get_num_threads(), **r))
                print(f"{model} {bits} round {rnd} {m}: {r['seconds']:.1f} s (curves {r['curves_seconds']:.1f}, "
                      f"tuning {r['tuning_seconds']:.1f}, {r['iterations']} it)", flush=True)
                os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
                with open(a.out + ".tmp", "w") as fh:
                    json.dump(records, fh, indent=1)
                os.replace(a.out + ".tmp", a.out)
    print("\n".join(summary(records)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
