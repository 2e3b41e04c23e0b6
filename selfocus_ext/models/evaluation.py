"""FP evaluation of a zoo model on the fixed generated test set (CULane frame, default scenario mix)."""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from tqdm import tqdm

from ..data import synth
from ..eval import culane
from .base import LaneModel

TEST_SEED = 20261126


def generated_test_set(n: int, model_input, seed: int = TEST_SEED):
    """(images uint8 [n, h, w, 3], ground truth per image as point lists, scenarios), deterministic."""
    w, h = model_input.size
    images = np.empty((n, h, w, 3), np.uint8)
    gts, scen = [], []
    for i, s in enumerate(synth.scene_seeds(seed, n)):
        scene = synth.sample_scene(s, model_input.frame)
        images[i] = synth.render(scene, model_input.size, model_input.crop_top).image
        xs = synth.ground_truth(scene)
        ys = model_input.frame.ys
        gts.append([np.stack([l[~np.isnan(l)], ys[~np.isnan(l)]], 1) for l in xs])
        scen.append(scene.scenario)
    return images, gts, scen


@torch.no_grad()
def predict(model: LaneModel, images: np.ndarray, batch: int = 64, progress: bool = False):
    from .targets import to_input_tensor

    preds = []
    for i in tqdm(range(0, len(images), batch), disable=not progress, desc="predicting", unit="batch"):
        x = to_input_tensor(images[i : i + batch], model.model_input)
        preds.extend(model.decode(model(x)).to_points())
    return preds


def evaluate_generated(model: LaneModel, n: int = 2000, seed: int = TEST_SEED, data=None, progress: bool = False
                       ) -> Dict[str, culane.Counts]:
    """CULane counts per scenario and in total (IoU 0.5) on n generated test scenes."""
    model.eval()
    images, gts, scen = data if data is not None else generated_test_set(n, model.model_input, seed)
    preds = predict(model, images, progress=progress)
    res = culane.evaluate_grouped(preds, gts, scen, (0.5,), synth.SCENARIOS)
    return {k: v[0.5] for k, v in res.items()}


def count_macs(model: LaneModel) -> int:
    """Multiply-accumulates of one forward pass at the model's input size (convolutions and linear layers)."""
    total = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        k = mod.weight[0].numel()  # in/groups * kernel
        total += int(out.numel() // out.shape[0] * k)

    def lin_hook(mod, inp, out):
        nonlocal total
        total += int(out.numel() // out.shape[0] * mod.in_features)

    hooks = []
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    w, h = model.model_input.size
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))
    model.train(was_training)
    for hk in hooks:
        hk.remove()
    return total


@torch.no_grad()
def evaluate_tusimple_generated(model: LaneModel, n: int = 500, seed: int = TEST_SEED) -> Dict[str, float]:
    """TuSimple accuracy / FP / FN on generated TuSimple-frame scenes: the frame below row 330 (the share of
    the frame the CULane input keeps) resized to the model's input, lanes decoded onto the h_samples."""
    from ..data.datasets import ModelInput
    from ..data.layouts import TUSIMPLE_MIX
    from ..eval import tusimple as tus
    from ..lanes.frames import get_frame
    from .targets import to_input_tensor

    frame = get_frame("tusimple")
    saved = model.model_input
    model.model_input = ModelInput(frame, saved.size, 330.0)
    try:
        w, h = saved.size
        acc = fp = fn = 0.0
        seeds = synth.scene_seeds(seed + 1, n)
        for i in range(0, n, 64):
            chunk = seeds[i : i + 64]
            scenes = [synth.sample_scene(s, frame, mix=TUSIMPLE_MIX) for s in chunk]
            images = np.stack([synth.render(sc, (w, h), 330.0).image for sc in scenes])
            pred = model.decode(model(to_input_tensor(images, model.model_input)))
            for b, sc in enumerate(scenes):
                gt = [[-2 if np.isnan(x) else float(x) for x in lane] for lane in synth.ground_truth(sc)]
                pl = [[-2 if np.isnan(x) else float(x) for x in lane] for lane in pred.xs[b].numpy()
                      if not np.isnan(lane).all()]
                a, p, f = tus.bench(pl, gt, frame.ys.tolist(), 0)
                acc, fp, fn = acc + a, fp + p, fn + f
        return {"accuracy": acc / n, "fp": fp / n, "fn": fn / n}
    finally:
        model.model_input = saved
