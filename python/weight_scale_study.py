"""Weight-scale search criteria compared on calibration-only F1: which per-channel clipping gives the best
quantized network.

    python python/weight_scale_study.py --model bezier-s --bits w4a4 [--calib 512] [--scenes 1000]

The model is converted and calibrated once (activation steps: EMA-MSE, from the float model, so they do not
depend on the weight scales); then every weight criterion below sets the weight scales of all quantized
layers and the model is evaluated (CULane F1, IoU 0.5) on the fixed generated test set. Every criterion
searches the same grid (clip = max|w| * (1 - 0.01 i), i < 100, per output channel) and differs only in the
error it minimises:

- ``minmax``: no clipping.
- ``lp-P``: mean |w - Q(w)|^P over the channel's weights (``lp-2.0`` is OMSE).
- ``act-diag``: sum_j E[x_j^2] (w_j - Q(w_j))^2: the rounding error of each weight weighted by the second
  moment of the input it multiplies (the diagonal of the layer's input covariance).
- ``lp-2.0-gain``: the ``lp-2.0`` clip, then the scale multiplied so that the channel keeps its gain
  (<Q(w), w> = <w, w>; clipping otherwise shrinks every channel a little).
- ``act-full``: E[((w - Q(w)) . x)^2] = (w - Q(w))^T H (w - Q(w)), H = E[x x^T] over the layer's input
  patches: the channel's output error on the calibration inputs.

Prints a table and writes it to --out.
"""
from __future__ import annotations

import argparse
import time
import warnings
from typing import Callable, Dict

import torch
import torch.nn.functional as F

from selfocus_ext import models
from selfocus_ext.data import calibration_images
from selfocus_ext.quant import calibrate, quant_layers, quantize_model
from selfocus_ext.quant.modules import QuantConv1d, QuantConv2d
from selfocus_ext.quant.observers import MIN_SCALE, qmax
from selfocus_ext.workflow.data import DataSpec, evaluation_set
from selfocus_ext.workflow.evaluation import evaluate


def patches(layer, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as rows [positions, D] in the order of its flattened weight [C, D]."""
    if isinstance(layer, QuantConv2d):
        k = layer.weight.shape[2:]
        cols = F.unfold(x, k, dilation=layer.dilation, padding=layer.padding, stride=layer.stride)  # [B, D, P]
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    if isinstance(layer, QuantConv1d):
        cols = F.unfold(x.unsqueeze(2), (1, layer.weight.shape[2]), dilation=(1, layer.dilation[0]),
                        padding=(0, layer.padding[0]), stride=(1, layer.stride[0]))
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


@torch.no_grad()
def input_covariances(qmodel, images: torch.Tensor, rows_per_batch: int = 8192, batch: int = 16) -> Dict[str, torch.Tensor]:
    """H = E[x x^T] of every quantized layer's float input patches (a random subset of rows per batch)."""
    layers = quant_layers(qmodel)
    sums: Dict[str, torch.Tensor] = {}
    counts: Dict[str, int] = {}
    gen = torch.Generator().manual_seed(0)
    hooks = []
    for name, layer in layers.items():
        if getattr(layer, "groups", 1) != 1:
            raise NotImplementedError(f"{name}: grouped convolution")

        def hook(mod, args, name=name):
            rows = patches(mod, args[0].float())
            if rows.shape[0] > rows_per_batch:
                rows = rows[torch.randint(0, rows.shape[0], (rows_per_batch,), generator=gen)]
            h = rows.T @ rows
            sums[name] = sums.get(name, 0) + h.double()
            counts[name] = counts.get(name, 0) + rows.shape[0]

        hooks.append(layer.register_forward_pre_hook(hook))
    saved = {n: (l.quantize_weight, l.input_quantizer.enabled) for n, l in layers.items()}
    for layer in layers.values():
        layer.quantize_weight, layer.input_quantizer.enabled = False, False
    try:
        for i in range(0, len(images), batch):
            qmodel(images[i : i + batch])
    finally:
        for h in hooks:
            h.remove()
        for n, l in layers.items():
            l.quantize_weight, l.input_quantizer.enabled = saved[n]
    return {n: (sums[n] / counts[n]).float() for n in sums}


def grid_search(w: torch.Tensor, bits: int, error: Callable[[torch.Tensor], torch.Tensor], candidates: int = 100):
    """clip [C] minimising error(w - Q(w)) -> [C] over the shared grid."""
    maxabs = w.abs().amax(dim=1).clamp(min=MIN_SCALE)
    best_err = torch.full_like(maxabs, float("inf"))
    best = maxabs.clone()
    q = qmax(bits, True)
    for i in range(candidates):
        clip = maxabs * (1.0 - 0.01 * i)
        s = (clip / q).clamp(min=MIN_SCALE)[:, None]
        wq = torch.clamp(torch.round(w / s), -q - 1, q) * s
        e = error(w - wq)
        better = e < best_err
        best_err = torch.where(better, e, best_err)
        best = torch.where(better, clip, best)
    return best


def criteria(h: torch.Tensor):
    diag = torch.diagonal(h).clamp(min=0)
    return {
        "minmax": None,
        "lp-2.0": lambda d: d.abs().pow(2.0).mean(1),
        "lp-2.0-gain": lambda d: d.abs().pow(2.0).mean(1),
        "lp-2.4": lambda d: d.abs().pow(2.4).mean(1),
        "lp-3.0": lambda d: d.abs().pow(3.0).mean(1),
        "lp-4.0": lambda d: d.abs().pow(4.0).mean(1),
        "act-diag": lambda d: (d * d * diag).sum(1),
        "act-full": lambda d: ((d @ h) * d).sum(1),
    }


def set_weight_scales(qmodel, covs, bits_of, name: str, only: str = None, others: str = "minmax") -> None:
    """Every layer's weight scales by criterion ``name`` (with ``only``: that layer by ``name``, the others by
    ``others``)."""
    for lname, layer in quant_layers(qmodel).items():
        crit = name if only is None or lname == only else others
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).float()
        bits = bits_of(layer)
        fn = criteria(covs[lname])[crit]
        clip = w.abs().amax(dim=1).clamp(min=MIN_SCALE) if fn is None else grid_search(w, bits, fn)
        if crit.endswith("-gain"):  # keep the channel's gain: scale so that <Q(w), w> = <w, w>
            q = qmax(bits, True)
            s = (clip / q).clamp(min=MIN_SCALE)[:, None]
            levels = torch.clamp(torch.round(w / s), -q - 1, q)
            clip = clip * ((w * w).sum(1) / ((levels * s) * w).sum(1).clamp(min=1e-30)).clamp(0.5, 2.0)
        layer.weight_quantizer.scale = (clip / qmax(bits, True)).clamp(min=MIN_SCALE).to(layer.weight_quantizer.scale)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bezier-s")
    p.add_argument("--bits", default="w4a4")
    p.add_argument("--calib", type=int, default=512)
    p.add_argument("--cov-images", type=int, default=128)
    p.add_argument("--scenes", type=int, default=1000)
    p.add_argument("--only", nargs="*", help="criteria to run (default: all)")
    p.add_argument("--per-layer", metavar="CRITERION",
                   help="one layer at a time by CRITERION, the others min-max: which layers it hurts")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.manual_seed(0)
    model = models.load(a.model)
    images = calibration_images(a.calib, seed=12345)
    data = evaluation_set(DataSpec("synth"), a.scenes, model.model_input)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantize_model(model, a.bits, weight_observer="omse", act_observer="ema_mse")
    calibrate(q, images)
    t0 = time.time()
    covs = input_covariances(q, images[: a.cov_images])
    print(f"input covariances of {len(covs)} layers: {time.time() - t0:.0f} s", flush=True)
    fp = evaluate(model, data, progress=False)["f1"]
    rows = [("FP", fp)]
    if a.per_layer:
        set_weight_scales(q, covs, lambda layer: layer.weight_quantizer.bits, "minmax")
        base = evaluate(q, data, progress=False)["f1"]
        print(f"all layers min-max: F1 {base:.2f}", flush=True)
        lines = [f"| {a.model} {a.bits}: layer by {a.per_layer} (others min-max) | weights [C, D] | F1 | change |",
                 "|---|---|---|---|"]
        for lname, layer in quant_layers(q).items():
            set_weight_scales(q, covs, lambda layer: layer.weight_quantizer.bits, a.per_layer, only=lname)
            f1 = evaluate(q, data, progress=False)["f1"]
            shape = f"{layer.weight.shape[0]} x {layer.weight[0].numel()} ({layer.weight_quantizer.bits} bit)"
            lines.append(f"| {lname} | {shape} | {f1:.2f} | {f1 - base:+.2f} |")
            print(lines[-1], flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write("\n".join(lines) + "\n\n")
        return
    names = a.only or list(criteria(torch.eye(1)))
    for name in names:
        t0 = time.time()
        set_weight_scales(q, covs, lambda layer: layer.weight_quantizer.bits, name)
        f1 = evaluate(q, data, progress=False)["f1"]
        rows.append((name, f1))
        print(f"{a.model} {a.bits} weights {name}: F1 {f1:.2f} ({time.time() - t0:.0f} s)", flush=True)
    lines = [f"| {a.model} {a.bits} weight criterion | F1 |", "|---|---|"] + [f"| {n} | {f:.2f} |" for n, f in rows]
    print("\n".join(lines))
    if a.out:
        with open(a.out, "a") as f:
            f.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
