"""What the published detectors cost at their real size on this machine: parameters, multiply-accumulates,
float forward time at batch 1 and 16, one Selective Focus iteration (network-wise, batch 32) with its
process's peak memory, one QDrop block iteration (batch 32), and the largest block cache QDrop holds for 512
calibration images.

    python benchmarks/published_cost.py [--models scnn-r18 ...] [--out benchmarks/results/cpu-published-models.md]

Each model runs in its own process (peak resident memory is that process's). Weights are the architecture's
initialisation (cost does not depend on them); W4A4, calibrated on 32 generated scenes at the model's input.
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


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


def _numel(value) -> int:
    """Elements of a unit's input or output: a tensor, or tensors nested in lists, tuples and dicts."""
    if hasattr(value, "numel"):
        return int(value.numel())
    if isinstance(value, dict):
        value = list(value.values())
    return sum(_numel(v) for v in value) if isinstance(value, (list, tuple)) else 0


def _iteration_ms(rec) -> float:
    marks = []
    real_after = rec._after_iteration

    def mark(unit, it, opt, guard):
        marks.append((unit, time.perf_counter()))
        real_after(unit, it, opt, guard)

    rec._after_iteration = mark
    rec.run()
    gaps = [t1 - t0 for (u0, t0), (u1, t1) in zip(marks, marks[1:]) if u0 == u1]
    return 1e3 * sum(gaps) / max(1, len(gaps))


def child(name: str, iters: int, batch: int) -> dict:
    import resource
    import warnings

    import torch

    from selfocus_ext.data.datasets import SyntheticLaneDataset
    from selfocus_ext.models import registry
    from selfocus_ext.models.complexity import count_macs
    from selfocus_ext.quant import calibrate, quantize_model
    from selfocus_ext.recon import Reconstructor, build_curves, engine, find_units, get_budget, get_method

    torch.manual_seed(0)
    model = registry.load(name, pretrained=False)
    ds = SyntheticLaneDataset(32, seed=5, model_input=model.model_input)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    out = dict(model=name, params=sum(p.numel() for p in model.parameters()), macs=count_macs(model),
               input=list(model.model_input.size), batch=batch)

    def report():  # after every stage: a process killed for memory still leaves what it measured
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out), flush=True)

    with torch.no_grad():
        model(images[:1])
        out["fp_ms_b1"] = _median_ms(lambda: model(images[:1]), 5)
        out["fp_ms_b16"] = _median_ms(lambda: model(images[:16]), 2)
    report()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = calibrate(quantize_model(model, "w4a4"), images)
    # the largest block cache of a block-wise method: a block's input and output for 512 images
    sizes = {}
    blocks = find_units(q, images[:1], "block")
    hooks = [u.module.register_forward_hook(
        lambda m, i, o, n=u.name: sizes.__setitem__(n, (_numel(i) + _numel(o)) * 4)) for u in blocks]
    with torch.no_grad():
        q(images[:1])
    for h in hooks:
        h.remove()
    big = max(sizes, key=sizes.get)
    out["block_cache_mb_512"] = sizes[big] * 512 / 2**20
    out["largest_block"] = big
    report()
    budget = get_budget("quick", batch_size=batch, layer_iters=iters + 1, block_iters=iters + 1,
                        network_iters=iters + 1, refresh=iters + 1)
    curves = build_curves(model, images[:8], levels=3, reruns=2, progress=False)
    out["sf_ms"] = _iteration_ms(Reconstructor(q, get_method("sf"), budget, images, curves=curves, progress=False))
    report()
    keep = {blocks[0].name}
    real_find = engine.find_units
    engine.find_units = lambda *a, **k: [u for u in real_find(*a, **k) if u.name in keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q2 = calibrate(quantize_model(model, "w4a4"), images)
    out["qdrop_ms"] = _iteration_ms(Reconstructor(q2, get_method("qdrop"), budget, images, progress=False))
    out["qdrop_block"] = blocks[0].name
    report()
    return out


def run_child(name: str, iters: int, batch: int):
    """The child's last report (it reports after every stage), with ``failed`` when it did not finish."""
    run = subprocess.run([sys.executable, __file__, "--child", name, "--iters", str(iters), "--batch", str(batch)],
                         capture_output=True, text=True)
    reports = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    if not reports:
        print(f"{name}: failed before its first measurement\n{run.stderr[-2000:]}", file=sys.stderr)
        return None
    row = json.loads(reports[-1])
    if run.returncode != 0:
        row["failed"] = ("killed (out of memory)" if run.returncode in (-9, 137) else
                         f"failed: {(run.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    return row


def main() -> int:
    from selfocus_ext.models import published

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=[e.name for e in published.catalog()])
    p.add_argument("--iters", type=int, default=3, help="timed iterations per unit (after one untimed)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "cpu-published-models.md"))
    p.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child, a.iters, a.batch)
        return 0
    rows = []
    for name in a.models:
        row = run_child(name, a.iters, 32)
        if row is None:
            continue
        if "qdrop_ms" not in row:  # tuning at batch 32 did not fit in memory: the tuning numbers at batch 8
            small = run_child(name, a.iters, 8) or {}
            row["note"] = f"batch 32 {row.get('failed', 'incomplete')}; tuning measured at batch 8"
            row.update({k: small[k] for k in ("sf_ms", "qdrop_ms", "peak_mb") if k in small})
        rows.append(row)
        print(row, flush=True)
    import torch

    lines = ["# Published detectors at their real size: cost on this machine", "",
             f"`python benchmarks/published_cost.py` ({time.strftime('%Y-%m-%d')}). Machine: "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
             f"no other job running. W4A4; SF = one network-wise Selective "
             f"Focus iteration (forward of the quantized model, loss, backward, Adam) at batch 32; QDrop = one "
             f"iteration on the first unit of the block-wise split (the stem convolution) at batch 32 (mean of "
             f"{a.iters} after an untimed one); cache = "
             "the largest unit's input and output for 512 calibration images (float32: what a block-wise method "
             "caches at once); peak = the process's "
             "peak resident memory (float model, quantized model, 32 images, curves, one SF and one QDrop run). "
             "MACs count convolutions and linear layers (not attention's activation products).", "",
             "| model | input | params | GMACs | FP ms b1 | FP ms b16 | SF ms/it (b32) | QDrop ms/it (b32) | largest block cache (512 img) | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def ms(key):
            return (f"{r[key]:.0f}" + (" (b8)" if "note" in r else "")) if key in r else "—"

        peak = f"{r['peak_mb']:.0f}" + (f" ({r['note']})" if "note" in r else "")
        cache = f"{r['block_cache_mb_512']:.0f} MB ({r['largest_block']})" if "block_cache_mb_512" in r else "—"
        lines.append(f"| {r['model']} | {r['input'][0]}x{r['input'][1]} | {r['params'] / 1e6:.2f} M | "
                     f"{r['macs'] / 1e9:.1f} | {r['fp_ms_b1']:.0f} | {r['fp_ms_b16']:.0f} | {ms('sf_ms')} | "
                     f"{ms('qdrop_ms')} | {cache} | {peak} |")
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
