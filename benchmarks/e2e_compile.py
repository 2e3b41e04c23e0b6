"""torch.compile on the quantized model in the tuning loop: time per iteration and the tuned result, against eager.

    python benchmarks/e2e_compile.py [--model ganet-s] [--method sf] [--iters 60] [--out FILE]

Each configuration runs in its own process: calibration (W4A4, default observers), then ``--iters``
iterations of the method with the model's forward either eager or wrapped in ``torch.compile`` (inductor,
default mode). The fused ops are opaque to inductor (their fake kernels let it trace around them), so what
it can fuse is the glue between them. The QDrop seed, an int attribute redrawn every iteration, is left
unspecialised (``allow_unspec_int_on_nn_module``) so that it does not force a recompile per iteration.
Reported: the first iteration (compilation included), the median of the later ones, the whole run, and the
tuned model's outputs on 16 images against the eager run's (largest difference over each head's range).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(model: str, method: str, iters: int, mode: str, calib: int, out_path: str) -> dict:
    import warnings

    import torch

    from selfocus_ext import models
    from selfocus_ext.data import calibration_images
    from selfocus_ext.quant import calibrate, quantize_model
    from selfocus_ext.recon import Reconstructor, build_curves, get_budget, get_method

    torch.manual_seed(0)
    m = models.load(model)
    images = calibration_images(calib, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = calibrate(quantize_model(m, "w4a4"), images)
    meth = get_method(method)
    curves = build_curves(m, images[:16], levels=3, reruns=2, progress=False) if meth.select else None
    if mode == "compiled":
        import torch._dynamo.config as dynamo_config

        dynamo_config.allow_unspec_int_on_nn_module = True
        q.forward = torch.compile(q.forward)
    budget = get_budget("quick", layer_iters=iters, block_iters=iters, network_iters=iters, refresh=max(1, iters // 4))
    rec = Reconstructor(q, meth, budget, images, curves=curves, progress=False)
    marks = [time.perf_counter()]
    real_after = rec._after_iteration

    def mark(unit, it, opt, guard):
        marks.append(time.perf_counter())
        real_after(unit, it, opt, guard)

    rec._after_iteration = mark
    t0 = time.perf_counter()
    rec.run()
    total = time.perf_counter() - t0
    gaps = [b - a for a, b in zip(marks[1:], marks[2:])]
    with torch.no_grad():
        torch.save({k: v.detach() for k, v in q(images[:16]).items()}, out_path)
    return dict(model=model, method=method, mode=mode, iters=iters, first_s=marks[1] - t0,
                median_ms=1e3 * statistics.median(gaps), total_s=total)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ganet-s")
    p.add_argument("--method", default="sf")
    p.add_argument("--iters", type=int, default=60)
    p.add_argument("--calib", type=int, default=128)
    p.add_argument("--out", default=os.path.join(HERE, "results", "cpu-e2e-compile.md"))
    p.add_argument("--child", nargs=2, metavar=("MODE", "OUTPUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.model, a.method, a.iters, a.child[0], a.calib, a.child[1])))
        return 0
    import torch

    res, outs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("eager", "compiled"):
            path = os.path.join(tmp, f"{mode}.pt")
            run = subprocess.run([sys.executable, __file__, "--model", a.model, "--method", a.method, "--iters",
                                  str(a.iters), "--calib", str(a.calib), "--child", mode, path],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                res[mode] = dict(error=run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed")
                print(mode, res[mode], flush=True)
                continue
            res[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            outs[mode] = torch.load(path)
            print(res[mode], flush=True)
    lines = ["# torch.compile in the tuning loop", "",
             f"`python benchmarks/e2e_compile.py --model {a.model} --method {a.method} --iters {a.iters}` (W4A4, "
             f"{a.calib} calibration images, batch 16). Machine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
             f"{time.strftime('%Y-%m-%d')}.", "",
             "| mode | first iteration s | median ms/it (later ones) | whole run s |", "|---|---|---|---|"]
    for mode, r in res.items():
        if "error" in r:
            lines.append(f"| {mode} | failed: {r['error']} | | |")
        else:
            lines.append(f"| {mode} | {r['first_s']:.1f} | {r['median_ms']:.1f} | {r['total_s']:.1f} |")
    if len(outs) == 2 and "error" not in res["compiled"]:
        e, c = res["eager"], res["compiled"]
        lines += ["", f"Speed-up per iteration: {e['median_ms'] / c['median_ms']:.2f}x; whole run "
                      f"{e['total_s'] / c['total_s']:.2f}x (compilation included).", "",
                  "Tuned outputs, compiled against eager (16 images): largest |difference| / the head's range:", ""]
        for k, ref in outs["eager"].items():
            span = float(ref.max() - ref.min()) or 1.0
            lines.append(f"- {k}: {float((outs['compiled'][k] - ref).abs().max()) / span:.2e}")
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
