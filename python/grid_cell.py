"""One cell of the paper grid: one ``python -m selfocus_ext.tune`` run and the result it records (F1, times,
the machine and its load)."""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict

import torch

import grid_plan
from grid_plan import TEST_SCENES, Cell
from selfocus_ext import tune
from selfocus_ext.data.layouts import write_tusimple
from selfocus_ext.recon.config import ENGINE_VERSION
from selfocus_ext.workflow.run_dir import RunDir


def tusimple_root() -> str:
    """Generated TuSimple-frame trees (a train split for calibration, a test split): made once."""
    root = os.path.join(grid_plan.RUNS, "tusimple-synth")
    if not os.path.isfile(os.path.join(root, "test_label.json")):
        write_tusimple(root, 512, seed=1, split="train")
        write_tusimple(root, 1000, seed=1, split="test")
    return root


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def machine_name(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} cores, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def image_counts(out: str, key: str) -> list:
    """The scored model's per-test-image rows (CULane tp, fp, fn; TuSimple accuracy, fp, fn rates), in the
    test set's order: what the paired comparison of two cells bootstraps over."""
    counts = RunDir(out).load_counts(key)
    if counts is None:
        return []
    rows = counts.tolist()
    exact = all(float(v).is_integer() for row in rows for v in row)
    return [[int(v) for v in row] for row in rows] if exact else [[round(float(v), 6) for v in row] for row in rows]


def method_seconds(progress: dict) -> float:
    """Seconds of what a method needs beyond the calibration every method shares: the tuning (a block-wise
    method's captures and PD-Quant's corrections are inside it, as is Selective Focus's FP pass) and Selective
    Focus's noise-score curves, counted at what building them took even when this run found them cached."""
    seconds = progress.get("seconds", {})
    curves = progress.get("curves_build_seconds")
    if curves is None:
        curves = seconds.get("noise-score curves", 0.0)
    return float(seconds.get("tuning", 0.0) + curves)


# --smoke: each cell at the ci budget on a few images (for trying an executor; not results)
SMOKE_ARGS = ["--calib", "8", "--test", "16"]


def run_cell(cell: Cell, f: float, device: str = "cpu", smoke: bool = False) -> dict:
    out = os.path.join(grid_plan.RUNS, f"f{f:g}", cell.id)
    data = f"tusimple:{tusimple_root()}" if cell.data == "tusimple" else cell.data
    argv = ["--model", cell.model, "--bits", cell.bits, "--method", cell.method,
            "--budget", "ci" if smoke else f"f{f:g}",
            "--seed", str(cell.seed), "--data", data, "--out", out, "--quiet", "--resume", "--device", device,
            "--keep-tuned"] + cell.extra  # the tables report the raw tuned model (the held-out check is reported beside)
    if smoke:
        argv += SMOKE_ARGS
    elif cell.data == "synth":
        argv += ["--test", str(TEST_SCENES)]
    load0, t0 = load_average(), time.time()
    code = tune.main(argv)
    if code != 0:
        raise SystemExit(f"cell {cell.id}: the tune command stopped with exit code {code} ({out})")
    with open(os.path.join(out, "report.json")) as fh:
        report = json.load(fh)
    with open(os.path.join(out, "progress.json")) as fh:
        progress = json.load(fh)
    key = "tuned" if "tuned" in progress else "calibrated"
    return dict(cell=asdict(cell), id=cell.id, f=f, run=out, f1=progress[key]["f1"], fp_f1=progress["fp"]["f1"],
                image_counts=image_counts(out, key), method_seconds=method_seconds(progress),
                fp_accuracy=progress["fp"].get("accuracy"),
                lds=progress[key].get("lds"), counts=progress[key].get("counts"),
                accuracy=progress[key].get("accuracy"), seconds=progress.get("seconds", {}),
                tuning_seconds=progress.get("seconds", {}).get("tuning"), iterations=report.get("iterations"),
                selection=progress.get("selection", []), start_f1=progress["calibrated"]["f1"],
                heldout=progress.get("kept"), engine=ENGINE_VERSION, load_start=load0, load_end=load_average(),
                wall_seconds=time.time() - t0, cores=os.cpu_count(), device=device, machine=machine_name(device),
                date=time.strftime("%Y-%m-%d"), **({"smoke": True} if smoke else {}))
