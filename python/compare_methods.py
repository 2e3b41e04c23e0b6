"""Runs the tune command for several methods on one model and bit setting and tabulates F1, Lane
Distortion Score and time per method (a results file for benchmarks/results/).

    python python/compare_methods.py --model ganet-s --bits w4a4 --methods omse,qdrop,brecq,sf \
        [--lam 2,5] [--budget quick] [--out runs/compare] [--results benchmarks/results/methods-ganet-s-w4a4.md]

Each run lives in OUT/METHOD (OUT/sf-lamL for extra lambdas); an interrupted comparison continues where it
stopped when started again with the same arguments.
"""
import argparse
import json
import os
import platform
import sys
import time

from selfocus_ext import tune


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ganet-s")
    p.add_argument("--bits", default="w4a4")
    p.add_argument("--methods", default="omse,qdrop,brecq,sf")
    p.add_argument("--lam", default="", help="extra Semantic Guided Focus lambdas to run with sf (comma separated)")
    p.add_argument("--budget", default="quick")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--results", help="markdown file to write")
    p.add_argument("--extra", default="", help="more tune arguments, e.g. '--test 2000'")
    args = p.parse_args()
    runs = [(m, None) for m in args.methods.split(",") if m]
    runs += [("sf", float(l)) for l in args.lam.split(",") if l]
    rows = []
    for method, lam in runs:
        name = method if lam is None else f"sf-lam{lam:g}"
        out = os.path.join(args.out, f"{args.model}-{args.bits}", name)
        argv = ["--model", args.model, "--bits", args.bits, "--method", method, "--budget", args.budget,
                "--out", out, "--quiet"] + args.extra.split()
        if lam is not None:
            argv += ["--lam", str(lam)]
        if os.path.isfile(os.path.join(out, "run.json")):
            argv.append("--resume")
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        code = tune.main(argv)
        if code != 0:
            print(f"{name} stopped with exit code {code}", file=sys.stderr)
            return code
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        rows.append((name, rep, time.perf_counter() - t))
    lines = [f"# {args.model} {args.bits.upper()}: methods compared ({args.budget} budget)", "",
             f"Machine: {machine()}.", f"Command: `python python/compare_methods.py {' '.join(sys.argv[1:])}`", "",
             "F1 on the generated CULane-frame test set (IoU 0.5); LDS: mean Lane Distortion Score of the "
             "quantized model's lanes against the FP model's; tuning: seconds of reconstruction (curve building "
             "listed separately); calibration: observer passes.", "",
             "| method | F1 | LDS vs FP | calibration s | curves s | tuning s |", "|---|---|---|---|---|---|"]
    fp = None
    for name, rep, _ in rows:
        res = {r["stage"].split(" (")[0]: r for r in rep["results"]}
        fp = fp or res["FP"]["f1"]
        final = res.get("tuned", res["calibration only"])
        sec = rep["seconds"]
        curves = next((v for k, v in sec.items() if k.startswith("noise-score")), None)
        lines.append(f"| {name} | {final['f1']:.2f} | {final['lds']:.3f} | {sec.get('calibration', 0):.1f} | "
                     f"{'-' if curves is None else f'{curves:.1f}'} | {sec.get('tuning', 0):.1f} |")
    lines.insert(7, f"FP model: F1 {fp:.2f}.\n")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        with open(args.results, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
