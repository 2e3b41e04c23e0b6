"""F1 of the calibration-only baselines (ACIQ, OMSE) on the zoo models, per bit setting.

    python python/calibration_baselines.py [--models ...] [--settings w8a8 w8a4 w4a4] [--calib 512] [--scenes 2000]

Each model is converted (BatchNorm folded; first layer and head outputs at 8 bits), calibrated on
``--calib`` generated images — ACIQ: ACIQ for weights and activations; OMSE: OMSE (p = 2) for weights and
EMA-MSE for activations — and evaluated (CULane F1, IoU 0.5) on the fixed generated test set.

Every finished cell is stored at once in ``--cells`` (JSON, keyed by model, setting, method, calibration size
and test-set size), so an interrupted run continues where it stopped and later runs add models or columns.
The table of all stored cells for the chosen models, settings and methods replaces the block between the
markers in ``--out`` (benchmarks/results/calibration-f1.md), leaving the rest of that file as it is.
"""
import argparse
import json
import os
import time
import warnings

import torch
from tqdm import tqdm

from selfocus_ext import models
from selfocus_ext.data import calibration_images
from selfocus_ext.files import atomic_write_json
from selfocus_ext.quant import calibrate, quantize_model
from selfocus_ext.workflow.data import DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate

# column: (weight observer, activation observer)
METHODS = {"ACIQ": ("aciq", "aciq"), "OMSE": ("omse", "ema_mse"), "default": ("auto", "ema_mse"),
           "min-max w": ("minmax", "ema_mse"), "Lp4 w": ("lp4", "ema_mse")}
BEGIN, END = "<!-- zoo-table: written by python/calibration_baselines.py -->", "<!-- /zoo-table -->"
ZOO = [f"{f}-{s}" for s in "sm" for f in ("ganet", "condlane", "laneatt", "bezier", "lstr", "scnn", "resa")]


def load_cells(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def save_cells(path: str, cells: dict) -> None:
    atomic_write_json(cells, path)


def key(model: str, setting: str, method: str, calib: int, scenes: int) -> str:
    return f"{model}|{setting}|{method}|calib{calib}|scenes{scenes}"


def table(cells: dict, names, settings, methods, calib: int, scenes: int) -> str:
    lines = [BEGIN, "",
             f"## All zoo models: {scenes}-scene test set", "",
             f"`python python/calibration_baselines.py --scenes {scenes}` (cells in "
             "`benchmarks/results/calibration-f1.json`). "
             f"{calib} generated calibration images (seed 12345); the fixed {scenes}-scene generated test set "
             "(CULane frame, default mix), F1 at IoU 0.5. ACIQ = ACIQ weights and activations; OMSE = OMSE (p = 2) "
             "weights, EMA-MSE activations. First layer and head outputs at 8 bits, BatchNorm folded, symmetric, "
             "weights per output channel. A dash: not measured yet.", ""]
    header = ["model", "FP"] + [f"{s.upper()} {m}" for s in settings for m in methods]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    machines = set()
    for name in names:
        fp = cells.get(key(name, "fp", "fp", 0, scenes))
        row = [name, f"{fp['f1']:.2f}" if fp else "-"]
        for s in settings:
            for m in methods:
                c = cells.get(key(name, s, m, calib, scenes))
                row.append(f"{c['f1']:.2f}" if c else "-")
                if c:
                    machines.add(c["machine"])
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Machine: " + ("; ".join(sorted(machines)) or "-") + ".", "", END]
    return "\n".join(lines)


def write_block(path: str, block: str) -> None:
    text = open(path).read() if os.path.isfile(path) else "# Calibration only: CULane F1 on generated scenes\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=ZOO)
    p.add_argument("--settings", nargs="+", default=["w8a8", "w8a4", "w4a4"])
    p.add_argument("--calib", type=int, default=512)
    p.add_argument("--scenes", type=int, default=2000)
    p.add_argument("--methods", nargs="+", default=["ACIQ", "OMSE"], help=f"columns among {', '.join(METHODS)}")
    p.add_argument("--out", default="benchmarks/results/calibration-f1.md")
    p.add_argument("--cells", default="benchmarks/results/calibration-f1.json")
    a = p.parse_args()
    for m in a.methods:
        if m not in METHODS:
            p.error(f"--methods: unknown column {m!r}; expected some of {', '.join(METHODS)}")
    for name in a.models:
        if name not in models.available():
            p.error(f"--models: unknown model {name!r}; available: {', '.join(models.available())}")
    import platform

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    cells = load_cells(a.cells)
    todo = [(n, s, m) for n in a.models for s in a.settings for m in a.methods
            if key(n, s, m, a.calib, a.scenes) not in cells]
    todo += [(n, "fp", "fp") for n in a.models if key(n, "fp", "fp", 0, a.scenes) not in cells]
    images = None
    data = {}
    loaded = {}
    for name, setting, method in tqdm(sorted(todo), desc="calibration cells", unit="cell"):
        model = loaded.get(name) or models.load(name)
        loaded = {name: model}
        mi = model.model_input
        if (mi.size, mi.crop_top) not in data:
            data[(mi.size, mi.crop_top)] = evaluation_set(DataSpec("synth"), a.scenes, mi)
        ds = data[(mi.size, mi.crop_top)]
        t0 = time.time()
        if setting == "fp":
            f1 = evaluate(model, ds, progress=False)["f1"]
            cells[key(name, "fp", "fp", 0, a.scenes)] = dict(f1=f1, seconds=round(time.time() - t0, 1), machine=machine)
        else:
            if images is None:
                torch.manual_seed(0)
                images = calibration_images(a.calib, seed=12345)
            wo, ao = METHODS[method]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = quantize_model(model, setting, weight_observer=wo, act_observer=ao)
            calibrate(q, images)
            f1 = evaluate(q, ds, progress=False)["f1"]
            cells[key(name, setting, method, a.calib, a.scenes)] = dict(f1=f1, seconds=round(time.time() - t0, 1),
                                                                       machine=machine)
        tqdm.write(f"{name} {setting} {method}: F1 {f1:.2f} ({time.time() - t0:.0f} s)")
        save_cells(a.cells, cells)
    # the table lists the whole zoo, so a run for some models keeps the rows of the others
    block = table(cells, ZOO + [n for n in a.models if n not in ZOO], a.settings, a.methods, a.calib, a.scenes)
    write_block(a.out, block)
    print(block)


if __name__ == "__main__":
    main()
