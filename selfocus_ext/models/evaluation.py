"""FP evaluation of a zoo model on the fixed generated test set (CULane frame, default scenario mix)."""
from __future__ import annotations

from typing import Dict, Optional

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
    groups: Dict[str, tuple] = {}
    for p, g, s in zip(preds, gts, scen):
        groups.setdefault(s, ([], []))
        groups[s][0].append(p)
        groups[s][1].append(g)
    ordered = {name: groups[name] for name in synth.SCENARIOS if name in groups}
    res = culane.evaluate_scenarios(ordered, (0.5,))
    return {k: v[0.5] for k, v in res.items()}
