"""Every zoo model exported to ONNX and run in onnxruntime, against the PyTorch quantized model.

    python python/onnx_check.py [--models ...] [--settings w8a8 w8a4 w4a4] [--formats qdq qcdq]
                                [--scenes 1000] [--images 64] [--calib 256]

Per model and bit setting: the model calibrated with the default observers on ``--calib`` generated images
(the same for every cell), exported in each format (int32 biases, the deployable form), loaded in
onnxruntime at its full optimisation level (falling back to the basic level where that fails). Reported:
the outputs on the first ``--images`` test images against the deployable PyTorch model's (``freeze``: the
same int32 biases as the export), in units of each output's 8-bit step (max |output| / 127), and the decoded
F1 on the first ``--scenes`` scenes of the fixed generated test set of three models: the PyTorch simulation
(float biases, what tuning optimises), the deployable PyTorch model, and onnxruntime. Each finished cell is stored at once in ``--cells`` (JSON), so a stopped run
continues; the table goes to ``--out``.
"""
import argparse
import json
import os
import platform
import tempfile
import time
import warnings

import torch
from tqdm import tqdm

from selfocus_ext import models
from selfocus_ext.data import calibration_images
from selfocus_ext.files import atomic_write_json
from selfocus_ext.export import OnnxLaneModel, export_onnx, freeze, open_session, output_agreement, run_batches
from selfocus_ext.export.sensitivity import rounding_spread
from selfocus_ext.quant import calibrate, quantize_model
from selfocus_ext.workflow.data import DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate

PUBLISHED_HEADING = "## Published architectures at their real size"
ZOO = [f"{f}-{s}" for s in "sm" for f in ("ganet", "condlane", "laneatt", "bezier", "lstr", "scnn", "resa")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=[m for m in ZOO if os.path.isfile(models.registry.weights_path(m))])
    p.add_argument("--settings", nargs="+", default=["w8a8", "w8a4", "w4a4"])
    p.add_argument("--formats", nargs="+", default=["qdq", "qcdq"])
    p.add_argument("--scenes", type=int, default=1000)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--calib", type=int, default=256)
    p.add_argument("--spread-above", type=float, default=0.2,
                   help="where |F1 onnxruntime - F1 deployable| exceeds this, also measure the deployable model's F1 "
                        "under float-rounding noise (--ulps, --noise-seeds): the floor a runtime is judged against")
    p.add_argument("--ulps", type=int, default=4)
    p.add_argument("--noise-seeds", type=int, default=10)
    p.add_argument("--cells", default="benchmarks/results/onnx-check.json")
    p.add_argument("--out", default="benchmarks/results/onnx-check.md")
    a = p.parse_args()
    cells = json.load(open(a.cells)) if os.path.isfile(a.cells) else {}
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    images = calibration_images(a.calib, seed=12345)
    todo = [(n, s) for n in a.models for s in a.settings
            if any("deploy_f1" not in cells.get(f"{n}|{s}|{f}|{a.scenes}", {}) or needs_spread(
                cells[f"{n}|{s}|{f}|{a.scenes}"], a) for f in a.formats)]
    sets: dict = {}
    for name, bits in tqdm(todo, desc="models x settings", unit="cell"):
        import onnxruntime

        model = models.load(name)
        mi = model.model_input
        key = (mi.frame.name, mi.size, mi.crop_top, mi.mean, mi.std)
        if sets.get("key") != key:  # one test set (its scenes drawn once) while the model input stays the same
            sets.update(key=key, data=evaluation_set(DataSpec("synth"), a.scenes, mi))
        data = sets["data"]
        inputs, _ = data.items(0, a.images)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = calibrate(quantize_model(model, bits), images)
        torch_f1 = evaluate(q, data, progress=False)["f1"]
        deployable, _ = freeze(q)  # int32 biases, as exported
        deploy_f1 = evaluate(deployable, data, progress=False)["f1"]
        ref = run_batches(deployable, inputs)
        spread = None
        for fmt in a.formats:
            key = f"{name}|{bits}|{fmt}|{a.scenes}"
            if "deploy_f1" in cells.get(key, {}):
                if needs_spread(cells[key], a):
                    spread = spread or rounding_spread(deployable, lambda m: evaluate(m, data, progress=False)["f1"],
                                                       a.ulps, a.noise_seeds, clean=deploy_f1)
                    cells[key]["rounding_spread"] = spread
                    tqdm.write(f"{name} {bits} {fmt}: deployable F1 under +-{a.ulps} ulp noise "
                               f"{spread['low']:.2f}..{spread['high']:.2f}; onnxruntime {cells[key]['onnx_f1']:.2f}")
                    atomic_write_json(cells, a.cells)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "m.onnx")
                t0 = time.time()
                info = export_onnx(q, path, fmt=fmt)
                seconds = time.time() - t0
                sess = open_session(path)
                runtime = OnnxLaneModel(sess, model)
                agree = output_agreement(ref, run_batches(runtime, inputs))
                onnx_f1 = evaluate(runtime, data, progress=False)["f1"]
            cells[key] = dict(model=name, bits=bits, format=fmt, scenes=a.scenes, torch_f1=torch_f1, deploy_f1=deploy_f1,
                              onnx_f1=onnx_f1,
                              level=sess.optimization_level, export_seconds=round(seconds, 1), bytes=info["bytes"],
                              agreement=agree, onnxruntime=onnxruntime.__version__, machine=machine)
            tqdm.write(f"{name} {bits} {fmt}: F1 torch {torch_f1:.2f}, deployable {deploy_f1:.2f}, onnxruntime {onnx_f1:.2f} ({sess.optimization_level}); "
                       "max steps " + ", ".join(f"{k} {v['max_steps']:.1f}" for k, v in agree.items()))
            atomic_write_json(cells, a.cells)
    write_table(cells, a)


def needs_spread(cell: dict, a) -> bool:
    return ("deploy_f1" in cell and "rounding_spread" not in cell
            and abs(cell["onnx_f1"] - cell["deploy_f1"]) > a.spread_above)


def write_table(cells: dict, a) -> None:
    rows = [c for c in cells.values() if c["scenes"] == a.scenes]
    rows.sort(key=lambda c: (ZOO.index(c["model"]) if c["model"] in ZOO else 99, c["bits"], c["format"]))
    lines = ["# ONNX export checked in onnxruntime", "",
             f"`python python/onnx_check.py` (cells in `{os.path.basename(a.cells)}`). Each model calibrated with the "
             f"default observers on {a.calib} generated images, exported with int32 biases, run in onnxruntime at the "
             "level it loads at (all, else basic). F1 on the first "
             f"{a.scenes} scenes of the generated test set of the PyTorch simulation (float biases, what the tuning "
             "optimises), of the deployable PyTorch model (`freeze`: biases on the int32 accumulator grid, as exported) "
             "and of onnxruntime; 'runtime - deployable' is the export's fidelity, 'deployable - simulation' the effect "
             "of the int32 biases themselves. Outputs on the first test images, onnxruntime against the deployable "
             "PyTorch model, in units of each output's 8-bit step (max |output| / 127): the largest difference over all "
             "outputs, its 99th percentile and the share within one step (worst output).", "",
             "| model | bits | format | level | F1 simulation | F1 deployable | F1 onnxruntime | runtime - deployable | "
             "deployable - simulation | max steps | p99 steps | within 1 step | MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in rows:
        if "deploy_f1" not in c:
            continue
        ag = c["agreement"].values()
        lines.append(f"| {c['model']} | {c['bits'].upper()} | {c['format']} | {c['level']} | {c['torch_f1']:.2f} | "
                     f"{c['deploy_f1']:.2f} | {c['onnx_f1']:.2f} | {c['onnx_f1'] - c['deploy_f1']:+.2f} | "
                     f"{c['deploy_f1'] - c['torch_f1']:+.2f} | {max(v['max_steps'] for v in ag):.1f} | "
                     f"{max(v['p99_steps'] for v in ag):.2f} | {min(v['within_one_step'] for v in ag):.3f} | "
                     f"{c['bytes'] / 1e6:.2f} |")
    done = [c for c in rows if "deploy_f1" in c]
    if done:
        worst = max(abs(c["onnx_f1"] - c["deploy_f1"]) for c in done)
        worst_sim = max(abs(c["onnx_f1"] - c["torch_f1"]) for c in done)
        lines += ["", f"{len(done)} cells. Largest |F1 onnxruntime - F1 deployable PyTorch|: {worst:.2f}; largest "
                      f"|F1 onnxruntime - F1 simulation|: {worst_sim:.2f}."]
    spread = [c for c in done if "rounding_spread" in c]
    if spread:
        lines += ["", "Where the runtime differs from the deployable model by more than "
                  f"{a.spread_above:g} F1: the deployable PyTorch model's own F1 when every quantized layer's input is "
                  "multiplied by (1 + k 2^-23), k uniform in -u..u (float rounding differences of the size two "
                  "runtimes' summation orders produce; `selfocus_ext.export.sensitivity`), over several noise seeds. "
                  "A runtime F1 inside that range cannot be told apart from the PyTorch model's by this test set.", "",
                  "| model | bits | format | F1 deployable | F1 onnxruntime | u | F1 under noise (seeds) | range | "
                  "runtime inside |", "|---|---|---|---|---|---|---|---|---|"]
        for c in spread:
            r = c["rounding_spread"]
            inside = r["low"] <= c["onnx_f1"] <= r["high"]
            lines.append(f"| {c['model']} | {c['bits'].upper()} | {c['format']} | {c['deploy_f1']:.2f} | "
                         f"{c['onnx_f1']:.2f} | {r['ulps']} | {', '.join(f'{v:.2f}' for v in r['noisy'])} | "
                         f"{r['low']:.2f}..{r['high']:.2f} | {'yes' if inside else 'no'} |")
    machines = sorted({c["machine"] + ", onnxruntime " + c["onnxruntime"] for c in rows})
    lines += ["", "Machine: " + "; ".join(machines) + "."]
    # the published architectures' section (python/onnx_check_published.py) stays after the zoo's tables
    old = open(a.out).read() if os.path.isfile(a.out) else ""
    kept = old[old.index(PUBLISHED_HEADING):] if PUBLISHED_HEADING in old else ""
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
