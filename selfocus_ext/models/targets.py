"""Ground truth in model-input coordinates, and the cached generated training set."""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from ..data import synth
from ..lanes.frames import ModelInput


def slot_points(slots: np.ndarray, model_input: ModelInput) -> List[Optional[np.ndarray]]:
    """[4, R] frame x values by slot -> per slot the (N, 2) input-pixel points (x, y) seen by the model,
    ordered bottom to top, or None for an empty slot."""
    ys = model_input.frame.ys
    out: List[Optional[np.ndarray]] = []
    for xs in slots:
        keep = ~np.isnan(xs) & (ys >= model_input.crop_top)
        if np.count_nonzero(keep) < 2:
            out.append(None)
            continue
        u, v = model_input.to_input(xs[keep], ys[keep])
        pts = np.stack([u, v], 1).astype(np.float32)
        out.append(pts[np.argsort(-pts[:, 1])])
    return out


def x_at(points: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x of a lane (points (N, 2)) at rows y by linear interpolation inside its extent, NaN outside."""
    order = np.argsort(points[:, 1])
    py, px = points[order, 1], points[order, 0]
    y = np.asarray(y, dtype=np.float64)
    out = np.interp(y, py, px)
    out[(y < py[0]) | (y > py[-1])] = np.nan
    return out


def trainset_path(n: int, seed: int, model_input: ModelInput) -> str:
    root = os.environ.get("SELFOCUS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "selfocus_ext"))
    w, h = model_input.size
    return os.path.join(root, f"trainset_{model_input.frame.name}_{w}x{h}_c{int(model_input.crop_top)}_n{n}_s{seed}.npz")


def build_trainset(n: int, seed: int, model_input: ModelInput, cache: bool = True,
                   only: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """n generated scenes at the model's input resolution with their slot labels (cached on disk).

    ``only``: the positions among the n scenes a run will draw (sorted, distinct); the arrays then hold those
    scenes alone, in that order. Scene i depends on (seed, i) only, so they equal the full set's rows; a short
    run renders its few hundred scenes instead of all n (and caches nothing, unless the full set is cached
    already, which it then reads)."""
    path = trainset_path(n, seed, model_input)
    positions = None
    if only is not None:
        positions = np.asarray(only, dtype=np.int64)
        if positions.ndim != 1 or (positions.size and (positions[0] < 0 or positions[-1] >= n
                                                        or np.any(np.diff(positions) <= 0))):
            raise ValueError(f"only: expected sorted distinct positions in [0, {n}), got {positions[:8]}...")
    if cache and os.path.isfile(path):
        with np.load(path) as z:
            return {k: (z[k] if positions is None else z[k][positions]) for k in z.files}
    seeds = synth.scene_seeds(seed, n)
    picked = range(n) if positions is None else positions.tolist()
    m = len(picked)
    w, h = model_input.size
    images = np.empty((m, h, w, 3), np.uint8)
    slots = np.empty((m, 4, model_input.frame.rows), np.float32)
    scen = np.empty(m, dtype="<U8")
    for i, k in enumerate(tqdm(picked, desc="rendering training scenes", unit="scene")):
        scene = synth.sample_scene(seeds[k], model_input.frame)
        images[i] = synth.render(scene, model_input.size, model_input.crop_top).image
        slots[i] = synth.ground_truth_slots(scene)
        scen[i] = scene.scenario
    data = {"images": images, "slots": slots, "scenarios": scen}
    if cache and positions is None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, **data)
        os.replace(tmp, path)
    return data
