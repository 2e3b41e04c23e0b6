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
                fp_accuracy=progress["fp"].get("accuracy"),
                lds=progress[key].get("lds"), counts=progress[key].get("counts"),
                accuracy=progress[key].get("accuracy"), seconds=progress.get("seconds", {}),
                tuning_seconds=progress.get("seconds", {}).get("tuning"), iterations=report.get("iterations"),
                selection=progress.get("selection", []), start_f1=progress["calibrated"]["f1"],
                heldout=progress.get("kept"), engine=ENGINE_VERSION, load_start=load0, load_end=load_average(),
                wall_seconds=time.time() - t0, cores=os.cpu_count(), device=device, machine=machine_name(device),
                date=time.strftime("%Y-%m-%d"), **({"smoke": True} if smoke else {}))
