"""F1 of the calibration-only baselines (ACIQ, OMSE) on the zoo models, per bit setting.

    python python/calibration_baselines.py [--models ...] [--settings w8a8 w8a4 w4a4] [--calib 512] [--scenes 2000]

Each model is converted (BatchNorm folded; first layer and head outputs at 8 bits), calibrated on
``--calib`` generated images — ACIQ: ACIQ for weights and activations; OMSE: OMSE (p = 2) for weights and
EMA-MSE for activations — and evaluated (CULane F1, IoU 0.5) on the fixed generated test set. Writes
benchmarks/results/calibration-f1.md.
"""
import argparse
import time
import warnings

import torch

from selfocus_ext import models
from selfocus_ext.data import calibration_images
from selfocus_ext.quant import calibrate, quantize_model
from selfocus_ext.workflow.data import DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate

# column: (weight observer, activation observer)
METHODS = {"ACIQ": ("aciq", "aciq"), "OMSE": ("omse", "ema_mse"), "default": ("auto", "ema_mse"),
           "min-max w": ("minmax", "ema_mse"), "Lp4 w": ("lp4", "ema_mse")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["ganet-s", "laneatt-s", "bezier-s", "scnn-s"])
    p.add_argument("--settings", nargs="+", default=["w8a8", "w8a4", "w4a4"])
    p.add_argument("--calib", type=int, default=512)
    p.add_argument("--scenes", type=int, default=2000)
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"columns among {', '.join(METHODS)}")
    p.add_argument("--out", default="benchmarks/results/calibration-f1.md")
    a = p.parse_args()
    methods = {m: METHODS[m] for m in a.methods}
    torch.manual_seed(0)
    images = calibration_images(a.calib, seed=12345)
    rows = []
    data = None
    for name in a.models:
        model = models.load(name)
        data = data or evaluation_set(DataSpec("synth"), a.scenes, model.model_input)
        fp = evaluate(model, data, progress=False)["f1"]
        row = [name, f"{fp:.2f}"]
        for setting in a.settings:
            for method, (wo, ao) in methods.items():
                t0 = time.time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    q = quantize_model(model, setting, weight_observer=wo, act_observer=ao)
                calibrate(q, images)
                f1 = evaluate(q, data, progress=False)["f1"]
                row.append(f"{f1:.2f}")
                print(f"{name} {setting} {method}: F1 {f1:.2f} ({time.time() - t0:.0f} s)", flush=True)
        rows.append(row)
    header = ["model", "FP"] + [f"{s.upper()} {m}" for s in a.settings for m in methods]
    lines = ["# Calibration-only baselines: CULane F1 on generated scenes", "",
             f"{a.calib} generated calibration images; {a.scenes}-scene generated test set (CULane frame, default "
             "mix), F1 at IoU 0.5. ACIQ = ACIQ weights and activations; OMSE = OMSE (p = 2) weights, EMA-MSE "
             "activations. First layer and head outputs at 8 bits, BatchNorm folded, symmetric, zero point 0. "
             "Machine: the 2-core AMD EPYC dev VM, torch 2.13.0+cpu.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
