"""What the hard-forward rounding costs: the AdaRound ops against a copy of the same bytes, and Selective
Focus's tuning iteration with the soft forward, the two-call hard forward and the fused hard-forward op.

    python benchmarks/adaround_ste_cost.py [--sizes 65536 1048576 2359296 16777216] [--iters 20] [--rounds 3]
                                           [--model ganet-s] [--out FILE] [--profile]

Everything runs in one process, with glibc's freed-buffer thresholds raised as the tune command raises them.

*Bandwidth.* For each weight size n (shape [256, n / 256], 4 bits), forward + backward of an op
(``torch.autograd.grad`` of the output against ``v``, gradient of ones) against ``dst.copy_(src)`` of a
tensor whose read and write move the same bytes as the op's kernels (28 bytes per weight element: the forward
reads w and v and writes y, the backward reads the gradient, w and v and writes grad v; the slope path writes
and reads its slope instead of reading w and v again). Each measurement is the median of ``--repeats`` calls;
the op and its copy are timed alternately, and the fraction is copy time / op time (1.0 = at the copy's
bandwidth).

*Iteration.* The model is calibrated at W4A4 once; Selective Focus then runs ``--iters`` network-wise
iterations on a fresh copy of it for each variant, the variants alternated ``--rounds`` times (A B C A B C ...).
A variant's time per iteration is the median gap between consecutive iteration ends (the first left out).
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("soft forward", "hard forward, two calls", "hard forward, fused op")


def two_call_ste(w, v, scale, bits):
    """The hard forward as it was composed before the fused op: the soft and the hard rounding, each one call
    of adaround_quant, joined straight-through."""
    from selfocus_ext.ops import adaround_quant

    soft = adaround_quant(w, v, scale, bits)
    hard = adaround_quant(w, v.detach(), scale, bits, hard=True)
    return hard + (soft - soft.detach())


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def bandwidth_rows(sizes, repeats: int):
    import torch

    import selfocus_ext as se

    rows = []
    for n in sizes:
        g = torch.Generator().manual_seed(n)
        w = torch.randn(256, n // 256, generator=g) * 0.2
        scale = w.abs().amax(1) / 7
        v = se.adaround_init(w, scale, 4).requires_grad_(True)
        ones = torch.ones_like(w)
        src = torch.randn(n * 7 // 2, generator=g)
        dst = torch.empty_like(src)

        def fwd_bwd(op):
            return lambda: torch.autograd.grad(op(), v, ones)

        ops = {
            "soft (adaround_quant)": fwd_bwd(lambda: se.adaround_quant(w, v, scale, 4)),
            "hard forward, fused (adaround_quant_ste)": fwd_bwd(lambda: se.adaround_quant_ste(w, v, scale, 4)),
            "hard forward, two calls": fwd_bwd(lambda: two_call_ste(w, v, scale, 4)),
        }
        for name, fn in ops.items():
            op_ms, copy_ms = [], []
            for _ in range(3):  # alternated: the copy's bandwidth is measured beside the op's
                op_ms.append(median_ms(fn, repeats))
                copy_ms.append(median_ms(lambda: dst.copy_(src), repeats))
            o, c = statistics.median(op_ms), statistics.median(copy_ms)
            rows.append((n, name, o, c, c / o))
            print(f"n={n} {name}: {o:.3f} ms, copy {c:.3f} ms, fraction {c / o:.2f}", flush=True)
    return rows


def profile(sizes, repeats: int) -> None:
    """Prints where the fused op's time goes: each kernel alone against a copy of its own bytes, the autograd
    overhead, and torch's sigmoid as a yardstick for the backward's arithmetic."""
    import torch

    import selfocus_ext as se

    ops = torch.ops.selfocus
    print("| n | hard forward op | copy of its 12 B/el | backward kernel | copy of its 16 B/el | fwd+bwd through "
          "autograd | torch.sigmoid alone |")
    for n in sizes:
        w = torch.randn(256, n // 256) * 0.2
        s = w.abs().amax(1) / 7
        v = se.adaround_init(w, s, 4)
        g, out = torch.ones_like(w), torch.empty_like(w)
        vr = v.clone().requires_grad_(True)
        src12, dst12, src16, dst16 = torch.randn(n * 3 // 2), torch.empty(n * 3 // 2), torch.randn(2 * n), torch.empty(2 * n)
        cells = [median_ms(lambda: ops.adaround_quant_ste(w, v, s, 4), repeats),
                 median_ms(lambda: dst12.copy_(src12), repeats),
                 median_ms(lambda: ops.adaround_quant_backward(g, w, v, s, 4), repeats),
                 median_ms(lambda: dst16.copy_(src16), repeats),
                 median_ms(lambda: torch.autograd.grad(se.adaround_quant_ste(w, vr, s, 4), vr, g), repeats),
                 median_ms(lambda: torch.sigmoid(v, out=out), repeats)]
        print(f"| {n:,} | " + " | ".join(f"{c:.3f} ms" for c in cells) + " |", flush=True)


def iteration_rows(model_name: str, iters: int, rounds: int, calib: int):
    import warnings

    import torch

    from selfocus_ext import models
    from selfocus_ext.data import calibration_images
    from selfocus_ext.quant import calibrate, quantize_model, quantizers
    from selfocus_ext.recon import Reconstructor, build_curves, get_budget, get_method

    torch.manual_seed(0)
    m = models.load(model_name)
    images = calibration_images(calib, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = calibrate(quantize_model(m, "w4a4"), images)
    method = get_method("sf")
    curves = build_curves(m, images[:16], levels=3, reruns=2, progress=False)
    budget = get_budget("quick", network_iters=iters, refresh=iters)
    fused = quantizers.adaround_quant_ste
    per_variant = {v: [] for v in VARIANTS}
    for r in range(rounds):
        for variant in VARIANTS:
            quantizers.adaround_quant_ste = two_call_ste if variant == "hard forward, two calls" else fused
            q = copy.deepcopy(calibrated)
            rec = Reconstructor(q, method, budget, images, curves=curves, progress=False,
                                overrides={"hard_forward": variant != "soft forward"})
            marks = []
            real_after = rec._after_iteration

            def mark(unit, it, opt, guard, real_after=real_after, marks=marks):
                marks.append(time.perf_counter())
                real_after(unit, it, opt, guard)

            rec._after_iteration = mark
            rec.run()
            gaps = [b - a for a, b in zip(marks, marks[1:])]
            per_variant[variant].append(1e3 * statistics.median(gaps))
            print(f"round {r} {variant}: {per_variant[variant][-1]:.1f} ms/iteration", flush=True)
    quantizers.adaround_quant_ste = fused
    return per_variant


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[65536, 1048576, 2359296, 16777216])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--model", default="ganet-s")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calib", type=int, default=64)
    p.add_argument("--out", default=os.path.join(HERE, "results", "cpu-adaround-ste.md"))
    p.add_argument("--profile", action="store_true", help="only print where the fused op's time goes")
    a = p.parse_args()
    if any(n % 256 or n <= 0 for n in a.sizes):
        p.error("--sizes: each size must be a positive multiple of 256")
    import torch

    from selfocus_ext.workflow.memory import keep_freed_buffers

    keep_freed_buffers()
    if a.profile:
        profile(a.sizes, a.repeats)
        return 0
    band = bandwidth_rows(a.sizes, a.repeats)
    it = iteration_rows(a.model, a.iters, a.rounds, a.calib)
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = ["# AdaRound's hard-forward rounding: bandwidth and Selective Focus's iteration", "",
             f"`python benchmarks/adaround_ste_cost.py` on {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
             f"({torch.get_num_threads()} threads), {platform.python_version()}, {time.strftime('%Y-%m-%d')}; one "
             "process (see the script's docstring for what is timed).", "",
             "## Forward + backward against a copy of the same bytes (28 bytes per weight element)", "",
             "| weights | op | op ms | copy ms | fraction of copy bandwidth |", "|---|---|---|---|---|"]
    for n, name, o, c, frac in band:
        lines.append(f"| {n:,} | {name} | {o:.3f} | {c:.3f} | {frac:.2f} |")
    base = statistics.median(it["soft forward"])
    lines += ["", f"## Selective Focus, {a.model} W4A4, network-wise, batch 16: ms per iteration "
              f"({a.rounds} alternated rounds of {a.iters} iterations)", "",
              "| variant | per round | median | vs soft forward |", "|---|---|---|---|"]
    for variant in VARIANTS:
        ms = it[variant]
        lines.append(f"| {variant} | {' / '.join(f'{x:.1f}' for x in ms)} | {statistics.median(ms):.1f} | "
                     f"{statistics.median(ms) / base:.2f}x |")
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
