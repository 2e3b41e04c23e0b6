"""Writing generated scenes in the real CULane and TuSimple directory layouts."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

import cv2
import numpy as np

from ..lanes.formats import format_culane_lines, lanes_to_tusimple
from . import synth

CULANE_SPLIT_FILES = [f"test{i}_{name}.txt" for i, name in enumerate(synth.SCENARIOS)]
# TuSimple is daytime highway: no crossroads, night or glare.
TUSIMPLE_MIX = {"normal": 0.7, "curve": 0.1, "shadow": 0.1, "crowd": 0.1}


def _write_jpeg(path: str, rgb: np.ndarray, quality: int = 92) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok = cv2.imwrite(path, rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not write {path}")


def _lanes_as_points(xs: np.ndarray, ys: np.ndarray) -> List[np.ndarray]:
    lanes = []
    for lane in xs:
        keep = ~np.isnan(lane)
        lanes.append(np.stack([lane[keep], ys[keep]], axis=1))
    return lanes


def _seed_base(seed: int, split: str) -> int:
    return int(seed) * 2 + (1 if split == "test" else 0)


def culane_image_path(index: int, split: str) -> str:
    """``driver_*_30frame/<clip>.MP4/<frame>.jpg``: 30 frames a clip, 300 clips a driver folder."""
    driver = (100 if split == "test" else 1) + index // 9000
    clip = index // 30
    return f"driver_{driver}_30frame/{clip:08d}_{driver:04d}.MP4/{(index % 30) * 30:05d}.jpg"


def write_culane(out: str, n: int, seed: int = 0, split: str = "test", mix: Optional[Dict[str, float]] = None,
                 progress=None) -> List[str]:
    """n scenes as a CULane tree under ``out``; returns the image paths (as the list files hold them)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    seeds = synth.scene_seeds(_seed_base(seed, split), n)
    paths, by_scenario = [], {name: [] for name in synth.SCENARIOS}
    for i, s in enumerate(seeds):
        scene = synth.sample_scene(s, "culane", mix=mix)
        image = synth.render(scene).image
        rel = culane_image_path(i, split)
        _write_jpeg(os.path.join(out, rel), image)
        lanes = _lanes_as_points(synth.ground_truth(scene), scene.frame.ys)
        with open(os.path.join(out, os.path.splitext(rel)[0] + ".lines.txt"), "w") as f:
            f.write(format_culane_lines(lanes))
        paths.append("/" + rel)
        by_scenario[scene.scenario].append("/" + rel)
        if progress is not None:
            progress.update(1)
    os.makedirs(os.path.join(out, "list"), exist_ok=True)
    with open(os.path.join(out, "list", f"{split}.txt"), "w") as f:
        f.write("".join(p + "\n" for p in paths))
    if split == "test":
        os.makedirs(os.path.join(out, "list", "test_split"), exist_ok=True)
        for fname, name in zip(CULANE_SPLIT_FILES, synth.SCENARIOS):
            with open(os.path.join(out, "list", "test_split", fname), "w") as f:
                f.write("".join(p + "\n" for p in by_scenario[name]))
    return paths


def write_tusimple(out: str, n: int, seed: int = 0, split: str = "test", mix: Optional[Dict[str, float]] = None,
                   progress=None) -> List[str]:
    """n scenes as a TuSimple tree: ``clips/<date>/<clip>/20.jpg`` and a JSON-lines label file
    (``test_label.json`` for the test split, ``label_data_synth.json`` for train)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    seeds = synth.scene_seeds(_seed_base(seed, split) + 7, n)
    dates = ("0313-1", "0313-2", "0530", "0531", "0601") if split == "train" else ("0530", "0531", "0601")
    h_samples = [int(y) for y in synth.get_frame("tusimple").ys]
    records, paths = [], []
    for i, s in enumerate(seeds):
        scene = synth.sample_scene(s, "tusimple", mix=mix or TUSIMPLE_MIX)
        image = synth.render(scene).image
        rel = f"clips/{dates[i % len(dates)]}/{split}_{i:06d}/20.jpg"
        _write_jpeg(os.path.join(out, rel), image)
        lanes = lanes_to_tusimple(synth.ground_truth(scene), decimals=0, keep_absent=True)
        records.append({"lanes": lanes, "h_samples": h_samples, "raw_file": rel})
        paths.append(rel)
        if progress is not None:
            progress.update(1)
    name = "test_label.json" if split == "test" else "label_data_synth.json"
    with open(os.path.join(out, name), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    return paths
