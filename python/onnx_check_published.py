"""Every published architecture exported to ONNX at its real input size and run in onnxruntime, against the
deployable PyTorch model.

    python python/onnx_check_published.py [--models ...] [--settings w8a8 w4a4] [--calib 8] [--images 2]

The published models ship no weights, so each gets seeded random weights of a small spread
(``selfocus_ext.testing.weights.randomize``, gain 0.5, 0.25 for LSTR and CLRNet, as the pipeline tests: large
random weights saturate attention and make recurrences diverge, where a trained model is smooth) -- the
check is of the exported graph, not of accuracy. Per entry and bit setting: calibrated with the default
observers on ``--calib`` generated scenes at its input, frozen (int32 biases), exported (qdq), loaded in
onnxruntime, and its outputs on ``--images`` other scenes compared with the deployable model's in units of
each output's 8-bit step (max |output| / 127): the existing criterion (at least 95% of the values within one
step, 99th percentile under 4 steps). Each finished cell is stored at once in ``--cells``, so a stopped run
continues; the rows go into ``--out`` under their own heading.
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

from selfocus_ext.data import calibration_images
from selfocus_ext.export import export_onnx, freeze, open_session, output_agreement, run_batches
from selfocus_ext.export.sensitivity import ulp_noise
from selfocus_ext.files import atomic_write_json, atomic_write_text
from selfocus_ext.models import published
from selfocus_ext.quant import calibrate, quantize_model
from selfocus_ext.testing.weights import randomize

from onnx_check import PUBLISHED_HEADING  # the zoo's table script keeps this section when it rewrites the file

HEADING = PUBLISHED_HEADING


def passes(agree: dict) -> bool:
    return all(a["within_one_step"] > 0.95 and a["p99_steps"] < 4 for a in agree.values())


def check(entry, bits: str, a) -> dict:
    model = randomize(entry.build(), seed=4, gain=0.25 if entry.family in ("lstr", "clrnet") else 0.5)
    mi = model.model_input
    images = calibration_images(a.calib + a.images, seed=777, model_input=mi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.time()
        q = calibrate(quantize_model(model, bits), images[:a.calib], progress=False)
        calib_s = time.time() - t0
    deployable, _ = freeze(q)
    inputs = images[a.calib:]
    ref = run_batches(deployable, inputs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        t0 = time.time()
        info = export_onnx(q, path, fmt="qdq")
        export_s = time.time() - t0
        sess = open_session(path)
        from selfocus_ext.export import OnnxLaneModel

        agree = output_agreement(ref, run_batches(OnnxLaneModel(sess, model), inputs))
        # where the optimised session disagrees: the same graph without onnxruntime's graph optimisations
        # (fused kernels sum in another order), to tell the graph from the runtime's arithmetic
        plain = None if passes(agree) else output_agreement(
            ref, run_batches(OnnxLaneModel(open_session(path, level="none"), model), inputs))
    noise = None
    if not passes(agree):  # the deployable model against itself with its layers' inputs moved by a few ulps
        with ulp_noise(deployable, 4, seed=0):
            noise = output_agreement(ref, run_batches(deployable, inputs))
    return dict(model=entry.name, bits=bits, input=list(mi.size), level=sess.optimization_level,
                calibration_seconds=round(calib_s, 1), export_seconds=round(export_s, 1), bytes=info["bytes"],
                agreement=agree, passes=passes(agree), folded_bn=q.quant_config["folded_bn"],
                agreement_unoptimised=plain, passes_unoptimised=None if plain is None else passes(plain),
                agreement_ulp_noise=noise)


def unoptimised(cell: dict) -> str:
    plain = cell.get("agreement_unoptimised")
    if not plain:
        return "-"
    return f"{min(v['within_one_step'] for v in plain.values()):.3f} ({'passes' if cell['passes_unoptimised'] else 'no'})"


def noisy(cell: dict) -> str:
    noise = cell.get("agreement_ulp_noise")
    return "-" if not noise else f"{min(v['within_one_step'] for v in noise.values()):.3f}"


def write_section(cells: dict, a) -> None:
    rows = sorted(cells.values(), key=lambda c: (c["model"], c["bits"]))
    lines = [HEADING, "",
             f"`python python/onnx_check_published.py` (cells in `{os.path.basename(a.cells)}`). Each catalog entry at "
             "its real input size with seeded random weights of a small spread (no published weights ship: this "
             f"checks the exported graph, not accuracy), calibrated on {a.calib} generated scenes, exported as qdq with int32 "
             f"biases, its outputs on {a.images} other scenes in onnxruntime against the deployable PyTorch model, in "
             "8-bit steps of each output (worst output); 'passes': every output within one step for more than 95% "
             "of its values and under 4 steps at the 99th percentile. Where an entry does not pass, the same file "
             "in an onnxruntime session without graph optimisations (level none) is compared too ('unoptimised'): "
             "passing there means the graph computes the deployable model and the optimised session's fused "
             "kernels (another summation order) move values across 4-bit rounding boundaries, which an untrained "
             "network amplifies. And the deployable PyTorch model against itself with every quantized layer's input "
             "multiplied by (1 + k 2^-23), k uniform in -4..4 ('PyTorch, 4 ulp noise'; "
             "`selfocus_ext.export.sensitivity`): the disagreement float rounding alone produces in this network.", "",
             "| model | bits | input | level | max steps | p99 steps | within 1 step | passes | unoptimised: within 1 step | "
             "PyTorch, 4 ulp noise: within 1 step | BN folded | export s | MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in rows:
        ag = c["agreement"].values()
        lines.append(f"| {c['model']} | {c['bits'].upper()} | {c['input'][0]}x{c['input'][1]} | {c['level']} | "
                     f"{max(v['max_steps'] for v in ag):.1f} | {max(v['p99_steps'] for v in ag):.2f} | "
                     f"{min(v['within_one_step'] for v in ag):.3f} | {'yes' if c['passes'] else 'no'} | "
                     f"{unoptimised(c)} | {noisy(c)} | {c['folded_bn']} | {c['export_seconds']:.0f} | {c['bytes'] / 1e6:.1f} |")
    machines = sorted({c["machine"] for c in rows})
    lines += ["", f"Machine: {'; '.join(machines)}.", ""]
    text = open(a.out).read() if os.path.isfile(a.out) else ""
    if HEADING in text:
        text = text[:text.index(HEADING)].rstrip("\n") + "\n\n"
    elif text:
        text = text.rstrip("\n") + "\n\n"
    atomic_write_text(text + "\n".join(lines), a.out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=[e.name for e in published.catalog()])
    p.add_argument("--settings", nargs="+", default=["w8a8", "w4a4"])
    p.add_argument("--calib", type=int, default=8)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--cells", default="benchmarks/results/onnx-check-published.json")
    p.add_argument("--out", default="benchmarks/results/onnx-check.md")
    a = p.parse_args()
    cells = json.load(open(a.cells)) if os.path.isfile(a.cells) else {}
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    # a cell that failed before the unoptimised and noise comparisons existed is checked again
    todo = [(n, s) for n in a.models for s in a.settings
            if f"{n}|{s}" not in cells or (not cells[f"{n}|{s}"]["passes"]
                                           and "agreement_ulp_noise" not in cells[f"{n}|{s}"])]
    for name, bits in tqdm(todo, desc="entries x settings", unit="cell"):
        import onnxruntime

        cell = check(published.published(name), bits, a)
        cells[f"{name}|{bits}"] = dict(cell, onnxruntime=onnxruntime.__version__, machine=machine)
        ag = cell["agreement"].values()
        tqdm.write(f"{name} {bits}: max steps {max(v['max_steps'] for v in ag):.1f}, within one step "
                   f"{min(v['within_one_step'] for v in ag):.3f}, {'passes' if cell['passes'] else 'FAILS'} "
                   f"(export {cell['export_seconds']:.0f} s)")
        atomic_write_json(cells, a.cells)
    if cells:
        write_section(cells, a)


if __name__ == "__main__":
    main()
