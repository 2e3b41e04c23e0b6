"""The fused ops' value end to end: the same reconstruction engine with the fused ops, and with the
plain-torch composite ops QDrop / MQBench use (selfocus_ext/testing/composites.py) swapped in.

    python benchmarks/e2e_fused_vs_composite.py [--models ganet-s scnn-s] [--iters 30] [--out FILE]

Per model and granularity (network: Selective Focus, block: QDrop, layer: AdaRound) each configuration runs
in its own process (so peak memory is its own): calibration, then ``--iters`` iterations per unit (only the
first ``--units`` units for block and layer, to bound the time), each unit's first iteration not counted.
Reports milliseconds per iteration, the ratio composite / fused, and each process's peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = {"network": "sf", "block": "qdrop", "layer": "adaround"}


def composite_ops():
    """Swaps the quantizers' fused ops for the composite formulations (same signatures)."""
    import torch

    from selfocus_ext.testing import composites as C

    from selfocus_ext.quant import quantizers
    from selfocus_ext.quant.observers import qmax
    from selfocus_ext.recon import rounding

    def adaround_quant(w, v, scale, bits, hard=False):
        s = scale.reshape(-1, *([1] * (w.dim() - 1)))
        return C.adaround_composite(w, v, s, 0.0, -qmax(bits, True) - 1, qmax(bits, True), hard)

    def act_quant(x, step, bits, signed, keep_prob=1.0, seed=0, grad_scale=1.0):
        lo = -qmax(bits, True) - 1 if signed else 0
        return C.lsq_qdrop_composite(x, step, 0.0, lo, qmax(bits, signed), keep_prob, grad_scale)

    def fake_quant(x, scale, bits, signed=True, ch_axis=None):
        lo = -qmax(bits, True) - 1 if signed else 0
        if ch_axis is None:
            return torch.fake_quantize_per_tensor_affine(x, float(scale), 0, lo, qmax(bits, signed))
        zp = torch.zeros(scale.numel(), dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(x, scale.float(), zp, ch_axis, lo, qmax(bits, signed))

    quantizers.adaround_quant = adaround_quant
    quantizers.act_quant = act_quant
    quantizers.fake_quant = fake_quant
    rounding.adaround_regularizer = C.adaround_regularizer_composite


def child(model: str, granularity: str, impl: str, iters: int, units: int, calib: int) -> dict:
    import resource
    import warnings

    import torch

    from selfocus_ext import models
    from selfocus_ext.data import calibration_images
    from selfocus_ext.quant import calibrate, quantize_model
    from selfocus_ext.recon import Reconstructor, build_curves, find_units, get_budget, get_method
    from selfocus_ext.recon import engine

    if impl == "composite":
        composite_ops()
    torch.manual_seed(0)
    m = models.load(model)
    images = calibration_images(calib, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = calibrate(quantize_model(m, "w4a4"), images)
    method = get_method(METHODS[granularity])
    curves = build_curves(m, images[:16], levels=3, reruns=2, progress=False) if method.select else None
    budget = get_budget("quick", layer_iters=iters + 1, block_iters=iters + 1, network_iters=iters + 1,
                        refresh=iters + 1)
    rec = Reconstructor(q, method, budget, images, curves=curves, progress=False)
    # an iteration's time (forward, loss, backward, Adam) is the gap between consecutive iteration ends within
    # a unit; the first iteration of each unit (after its input caching) is left out
    marks = []
    real_after = rec._after_iteration

    def mark(unit, it, opt, guard):
        marks.append((unit, it, time.perf_counter()))
        real_after(unit, it, opt, guard)

    rec._after_iteration = mark
    if granularity != "network":
        all_units = find_units(q, images[:1], granularity)
        keep = {u.name for u in all_units[:units]}
        real_find = engine.find_units
        engine.find_units = lambda *a, **k: [u for u in real_find(*a, **k) if u.name in keep]
    rec.run()
    gaps = [t1 - t0 for (u0, _, t0), (u1, _, t1) in zip(marks, marks[1:]) if u0 == u1]
    return dict(model=model, granularity=granularity, impl=impl, iters=len(gaps),
                ms_per_iter=1e3 * sum(gaps) / max(1, len(gaps)),
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["ganet-s", "scnn-s"])
    p.add_argument("--granularities", nargs="+", default=["network", "block", "layer"])
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--units", type=int, default=4)
    p.add_argument("--calib", type=int, default=128)
    p.add_argument("--out", default=os.path.join(HERE, "results", "cpu-e2e-fused-vs-composite.md"))
    p.add_argument("--child", nargs=4, metavar=("MODEL", "GRANULARITY", "IMPL", "ITERS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        model, gran, impl, iters = a.child
        print(json.dumps(child(model, gran, impl, int(iters), a.units, a.calib)))
        return 0
    rows = []
    for model in a.models:
        for gran in a.granularities:
            pair = {}
            for impl in ("fused", "composite"):
                out = subprocess.run([sys.executable, __file__, "--child", model, gran, impl, str(a.iters),
                                      "--units", str(a.units), "--calib", str(a.calib)],
                                     capture_output=True, text=True, check=True)
                pair[impl] = json.loads(out.stdout.strip().splitlines()[-1])
                print(pair[impl], flush=True)
            rows.append(pair)
    import torch

    lines = ["# End to end: the reconstruction engine on fused ops vs the composite ops", "",
             f"`python benchmarks/e2e_fused_vs_composite.py` ({a.iters} iterations per unit, first {a.units} units "
             f"for block/layer, {a.calib} calibration images, W4A4, batch 16). Machine: "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads. Each configuration in its own process; time per iteration = the "
             "tuning time of the units divided by their iterations (forward, loss, backward, Adam); peak = the "
             "process's peak resident memory (model, caches and all).", "",
             "| model | granularity (method) | fused ms/it | composite ms/it | composite / fused | fused peak MB | composite peak MB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        f, c = r["fused"], r["composite"]
        lines.append(f"| {f['model']} | {f['granularity']} ({METHODS[f['granularity']]}) | {f['ms_per_iter']:.1f} | "
                     f"{c['ms_per_iter']:.1f} | {c['ms_per_iter'] / f['ms_per_iter']:.2f}x | {f['peak_mb']:.0f} | "
                     f"{c['peak_mb']:.0f} |")
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
