"""Turns a pytest-benchmark JSON file of benchmarks/test_bench_ops.py into a markdown results table.

    python benchmarks/summarize.py bench.json [--out benchmarks/results/cpu-ops.md]

For each op, size and mode: the fused op's median time, the baseline's (composite or native), the speedup
(baseline / fused), and the fused time as a multiple of its memory floor: the bytes it must move divided
by the bandwidth of a copy into preallocated memory measured in the same run.
"""
import argparse
import json
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return json.load(f)


def fmt_ms(seconds):
    return f"{seconds * 1e3:.3f}"


def summarize(data):
    rows = defaultdict(dict)
    copy_bw = {}
    clone_bw = {}
    for b in data["benchmarks"]:
        info = b["extra_info"]
        med = b["stats"]["median"]
        if info["op"] == "copy":
            (copy_bw if info["impl"] == "copy_" else clone_bw)[info["n"]] = info["bytes"] / med
            continue
        rows[(info["op"], info["mode"], info["n"])][info["impl"]] = (med, info["bytes"])

    m = data.get("machine_info", {})
    out = []
    out.append("# CPU benchmark of the fused quantization ops\n")
    out.append(
        f"Machine: {m.get('cpu_model', '?')}, {m.get('torch_threads', '?')} torch threads, "
        f"capability {m.get('torch_cpu_capability', '?')}; torch {m.get('torch', '?')}; "
        f"Python {m.get('python_version', '?')}; {m.get('platform', '?')}.  \n"
        f"Run: {data.get('datetime', '?')}. Times are medians (ms). Speedup = baseline / fused, measured in the same run.  \n"
        "Baselines: *composite* = the plain-torch op sequence of QDrop / MQBench (selfocus_ext/testing/composites.py); "
        "*native* = PyTorch's own fake-quant op.  \n"
        "x floor = fused time / (minimum bytes moved / bandwidth of a copy into preallocated memory, same run).\n"
    )
    out.append("| n | copy_ GB/s | clone GB/s (fresh allocation) |")
    out.append("|---|---|---|")
    for n in sorted(copy_bw):
        out.append(f"| {n} | {copy_bw[n] / 1e9:.1f} | {clone_bw.get(n, float('nan')) / 1e9:.1f} |")
    out.append("")
    items = []
    out.append("| op | mode | n | fused ms | baseline | baseline ms | speedup | x floor |")
    out.append("|---|---|---|---|---|---|---|---|")
    for (op, mode, n) in sorted(rows, key=lambda k: (k[0], k[1], k[2])):
        impls = rows[(op, mode, n)]
        if "fused" not in impls:
            continue
        fused_t, nbytes = impls["fused"]
        base_name = next((k for k in ("composite", "native", "reference") if k in impls), None)
        if base_name:
            base_t = impls[base_name][0]
            base = (base_name, fmt_ms(base_t), base_t / fused_t)
        else:
            base = ("-", "-", None)
        if nbytes == 0:  # not an elementwise op: report items per second instead of a memory floor
            speed = "-" if base[2] is None else f"{base[2]:.0f}x"
            items.append(f"| {op} | {n} | {fmt_ms(fused_t)} | {base[0]} | {base[1]} | {speed} | {n / fused_t:,.0f} |")
            continue
        floor = nbytes / copy_bw[n] if n in copy_bw else float("nan")
        speed = "-" if base[2] is None else f"{base[2]:.1f}x"
        out.append(f"| {op} | {mode} | {n} | {fmt_ms(fused_t)} | {base[0]} | {base[1]} | {speed} | {fused_t / floor:.1f} |")
    if items:
        out.append("")
        out.append("| lane op | items | C++ ms | baseline | baseline ms | speedup | C++ items/s |")
        out.append("|---|---|---|---|---|---|---|")
        out.extend(items)
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--out", help="write the table here (default: stdout)")
    a = p.parse_args(argv)
    text = summarize(load(a.json))
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
