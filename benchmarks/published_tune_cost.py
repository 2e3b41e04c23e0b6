"""The default tune of published detectors at their real size, end to end, stage by stage: time and peak
resident memory of the whole run.

    python benchmarks/published_tune_cost.py [--models clrnet-r18 condlane-r18 ufld-r18] [--bits w8a4]
        [--calib 32] [--test 20] [--iters 10] [--batch-size 4] [--device cpu] [--out FILE]

Each model: seeded random weights (the tests' spread) written as a checkpoint in its implementation's layout,
then ``python -m selfocus_ext.tune --model M --checkpoint FILE --data synth --method sf`` with the given budget
and ``--export onnx``, in a fresh process with an empty cache directory. Stage times come from the run's
report.json; peak RSS from the kernel's accounting of that process (``os.wait4``). Random weights decode few
lanes, so the decoding work in the evaluations and curves is a trained model's lower bound (say so with the
numbers). Rows are appended to ``--out`` (a markdown table per invocation, with the machine and the budget).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STAGES = ("evaluate fp", "calibration images", "calibration", "evaluate calibrated", "noise-score curves", "tuning",
          "evaluate tuned", "held-out check", "evaluate deployable", "onnx export", "evaluate onnx-qdq")


def write_checkpoint(name: str, path: str) -> list:
    """A random-weight checkpoint of ``name`` in its implementation's layout; the extra arguments it needs."""
    import torch

    from selfocus_ext.models import published, registry
    from selfocus_ext.testing.weights import in_layout, randomize

    entry = published.published(name)
    model = randomize(registry.build(name), seed=4, gain=0.25 if entry.family in ("lstr", "clrnet") else 0.5)
    torch.save(in_layout(model.state_dict(), entry.layouts[0]), path)
    extra = []
    if "anchors" in entry.extras:
        freq = os.path.join(os.path.dirname(path), "freq.pt")
        torch.save(torch.rand(2784, generator=torch.Generator().manual_seed(1)), freq)
        extra = ["--anchors", freq]
    return extra


def run_one(name: str, a, work: str) -> dict:
    ckpt = os.path.join(work, f"{name}.pth")
    extra = write_checkpoint(name, ckpt)
    out = os.path.join(work, f"run-{name}")
    cmd = [sys.executable, "-m", "selfocus_ext.tune", "--model", name, "--checkpoint", ckpt, "--data", "synth",
           "--bits", a.bits, "--method", "sf", "--calib", str(a.calib), "--test", str(a.test), "--iters", str(a.iters),
           "--batch-size", str(a.batch_size), "--device", a.device, "--cache-dir", os.path.join(work, f"cache-{name}"),
           "--out", out, "--export", "onnx", "--quiet"] + extra
    t0 = time.perf_counter()
    with open(os.path.join(work, f"{name}.log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    row = dict(model=name, wall_s=wall, peak_mb=usage.ru_maxrss / 1024, rc=os.waitstatus_to_exitcode(status))
    report = os.path.join(out, "report.json")
    if os.path.isfile(report):
        with open(report) as fh:
            rep = json.load(fh)
        row["seconds"] = rep["seconds"]
        row["stage_peak_mb"] = rep.get("peak_mb", {})  # the peak so far at the end of each stage
    else:
        with open(os.path.join(work, f"{name}.log")) as fh:
            row["error"] = (fh.read().strip().splitlines() or ["?"])[-1][:200]
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["clrnet-r18", "condlane-r18", "ufld-r18"])
    p.add_argument("--bits", default="w8a4")
    p.add_argument("--calib", type=int, default=32)
    p.add_argument("--test", type=int, default=20)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default=os.path.join(HERE, "results", "cpu-published-models.md"))
    a = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="published-tune-") as work:
        rows = [run_one(name, a, work) for name in a.models]
    lines = table(rows, a, started)
    with open(a.out, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def table(rows, a, started: str) -> list:
    """The markdown section of one invocation: its command, machine and budget, one row per model."""
    import torch

    device = (torch.cuda.get_device_name(0) if a.device == "cuda" and torch.cuda.is_available() else
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    lines = ["", f"## The default tune end to end ({started}; `python benchmarks/published_tune_cost.py "
             f"--models {' '.join(a.models)} --bits {a.bits} --calib {a.calib} --test {a.test} --iters {a.iters} "
             f"--batch-size {a.batch_size} --device {a.device}`)", "",
             f"Machine: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads. Selective Focus at "
             f"{a.bits}, {a.calib} calibration images, {a.test} test scenes, {a.iters} tuning iterations at batch "
             f"{a.batch_size} (a budget that finishes here; the paper's is 5000 at batch 32), ONNX export scored in "
             "onnxruntime; random weights in each implementation's checkpoint layout (they decode few lanes: the "
             "decoding in the evaluations and curves is a trained model's lower bound). Seconds per stage "
             "(report.json), wall = the whole command, peak = the process's peak RSS.", "",
             "| model | " + " | ".join(STAGES) + " | wall s | curves share | peak RSS MB |",
             "|---|" + "---|" * (len(STAGES) + 3)]
    for r in rows:
        if "seconds" not in r:
            lines.append(f"| {r['model']} | failed (rc {r['rc']}): {r.get('error', '')} |")
            continue
        sec = r["seconds"]
        cells = [f"{sec[s]:.1f}" if s in sec else "—" for s in STAGES]
        share = sec.get("noise-score curves", 0.0) / r["wall_s"]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {r['wall_s']:.0f} | {100 * share:.0f}% | "
                     f"{r['peak_mb']:.0f} |")
    peaks = [r for r in rows if r.get("stage_peak_mb")]
    if peaks:
        lines += ["", "Peak RSS so far at the end of each stage (GB; report.json's peak_mb):", ""]
        for r in peaks:
            lines.append(f"- {r['model']}: " + ", ".join(f"{k} {v / 1024:.1f}" for k, v in r["stage_peak_mb"].items()))
    return lines


if __name__ == "__main__":
    sys.exit(main())
