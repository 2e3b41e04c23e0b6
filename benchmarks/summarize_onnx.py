"""Turns a pytest-benchmark JSON of benchmarks/test_bench_onnx.py into the latency table.

    python benchmarks/summarize_onnx.py bench.json [--out benchmarks/results/cpu-onnx-latency.md]
"""
import argparse
import json
from collections import defaultdict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--out", default="benchmarks/results/cpu-onnx-latency.md")
    a = p.parse_args()
    data = json.load(open(a.json))
    rows = defaultdict(dict)
    for b in data["benchmarks"]:
        info = b["extra_info"]
        rows[(info["model"], info["batch"])][info["impl"]] = (b["stats"]["median"], info.get("level"))
    impls = ["onnxruntime int8 (W8A8)", "onnxruntime float32", "pytorch float32", "pytorch fake-quant W8A8"]
    m = data.get("machine_info", {})
    lines = ["# Latency of the exported models (CPU)", "",
             f"Machine: {m.get('cpu_model', '?')}, {m.get('torch_threads', '?')} torch threads (onnxruntime: its "
             f"default threads); torch {m.get('torch', '?')}. Run: {data.get('datetime', '?')}. Median ms per image "
             "(batch time / batch); in brackets: speed-up of onnxruntime int8 over each column.", "",
             "| model | batch | " + " | ".join(impls) + " |", "|---|---|" + "---|" * len(impls)]
    for (model, batch), r in sorted(rows.items()):
        base = r.get(impls[0], (None,))[0]
        cells = []
        for impl in impls:
            if impl not in r:
                cells.append("-")
                continue
            ms = r[impl][0] / batch * 1e3
            ratio = f" ({r[impl][0] / base:.2f}x)" if base and impl != impls[0] else ""
            cells.append(f"{ms:.2f}{ratio}")
        lines.append(f"| {model} | {batch} | " + " | ".join(cells) + " |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
