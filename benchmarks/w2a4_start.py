"""Why a W2A4 start can be dead: per zoo model and weight observer, the share of 2-bit weight codes that round
to zero, and the confidence heads' largest foreground probability per image (FP against the calibrated model).
A lane detector keeps a lane only where its confidence passes a threshold; when no image's peak passes it, the
calibrated model finds no lane, every tuning method starts from F1 0 and a reconstruction loss may fall while
the F1 stays there.

    python benchmarks/w2a4_start.py --models condlane-s laneatt-s --out benchmarks/results/diagnosis/w2a4-start.md
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import torch

from selfocus_ext import models
from selfocus_ext.data import calibration_images
from selfocus_ext.quant import QuantConfig, calibrate, quantize_model
from selfocus_ext.quant.modules import QuantLayer
from selfocus_ext.recon.pdquant import head_logit


def zero_code_share(qmodel: torch.nn.Module, bits: int) -> float:
    """Of the weights of every layer quantized at ``bits``, the share whose rounded code is 0."""
    zeros = total = 0
    for layer in qmodel.modules():
        if isinstance(layer, QuantLayer) and layer.quantize_weight and layer.weight_quantizer.bits == bits:
            scale = layer.weight_quantizer.scale.reshape(-1, *([1] * (layer.weight.dim() - 1)))
            codes = torch.round(layer.weight.detach() / scale).clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            zeros += int((codes == 0).sum())
            total += codes.numel()
    return zeros / max(total, 1)


@torch.no_grad()
def peak_probabilities(model: torch.nn.Module, images: torch.Tensor) -> dict:
    """Per confidence head, each image's largest foreground probability."""
    out = model(images)
    peaks = {}
    for spec in model.heads:
        if spec.role == "confidence":
            p = torch.sigmoid(head_logit(spec.conf_fn, out[spec.output_key].float()))
            peaks[spec.name] = p.reshape(len(images), -1).amax(1)
    return peaks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["condlane-s", "laneatt-s"])
    ap.add_argument("--observers", nargs="+", default=["auto", "omse"])
    ap.add_argument("--bits", nargs="+", default=["w2a4", "w4a4"])
    ap.add_argument("--calib", type=int, default=128, help="calibration images (seed 0, as the grid's seed 0)")
    ap.add_argument("--images", type=int, default=64, help="images whose peaks are read")
    ap.add_argument("--out", default="benchmarks/results/diagnosis/w2a4-start.md")
    a = ap.parse_args(argv)
    calib = calibration_images(a.calib, seed=0)
    probe = calibration_images(a.images, seed=1)
    rows = ["| model | bits | weight observer | 2-bit codes at 0 | head | FP peak (median) | quantized peak (median) "
            "| images over 0.5: FP / quantized |", "|---|---|---|---|---|---|---|---|"]
    t0 = time.time()
    for name in a.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp = models.load(name).eval()
        fp_peaks = peak_probabilities(fp, probe)
        for bits in a.bits:
            for obs in a.observers:
                cfg = QuantConfig.parse(bits, weight_observer=obs)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    q = calibrate(quantize_model(fp, cfg), calib)
                share = zero_code_share(q, cfg.weight_bits)
                q_peaks = peak_probabilities(q.eval(), probe)
                for head, p in fp_peaks.items():
                    qp = q_peaks[head]
                    rows.append(f"| {name} | {bits.upper()} | {obs} | {100 * share:.0f} % | {head} | "
                                f"{p.median():.3f} | {qp.median():.3f} | {int((p > 0.5).sum())} / "
                                f"{int((qp > 0.5).sum())} of {len(p)} |")
                print(rows[-1], flush=True)
    text = "\n".join([
        "# The W2A4 start: zero codes and confidence peaks",
        "",
        f"`python benchmarks/w2a4_start.py` ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}, {time.time() - t0:.0f} s). Calibration: "
        f"{a.calib} images of seed 0; peaks over {a.images} other images. The symmetric signed 2-bit grid is "
        "{-2, -1, 0, 1} x scale; the first layer and the heads' output layers stay at 8 bits.",
        "",
    ] + rows) + "\n"
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as fh:
        fh.write(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
