"""Data sets: readers of the real CULane and TuSimple layouts, a scene generator in memory and calibration
loaders (the frame-to-model-input transform is selfocus_ext.lanes.frames.ModelInput)."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .culane_files import read_lines_file, read_list, scenario_name
from ..lanes.formats import lanes_from_tusimple
from ..lanes.frames import ModelInput, get_frame  # noqa: F401  (ModelInput: re-exported)
from ..lanes.laneset import LaneSet, resample_points
from ..lanes.preprocess import read_image
from . import synth

class DatasetError(ValueError):
    """A data set directory or file that cannot be read as its layout requires."""


def _read_image(path: str, reader: str) -> np.ndarray:
    """uint8 RGB, decoded by the library the model's implementation uses (``ModelInput.reader``)."""
    if not os.path.isfile(path):
        raise DatasetError(f"missing image {path}")
    img = read_image(path, reader)
    if img is None:
        raise DatasetError(f"cannot decode image {path} (corrupt or not an image)")
    return img


# ----------------------------------------------------------------------------------------------------------
# CULane


class CULaneDataset(Dataset):
    """A CULane tree (generated or a real download). Items: ``image`` (uint8 RGB, or the transform's output),
    ``lanes`` ((N, 2) arrays in frame pixels), ``xs`` ([L, R] on the frame's rows), ``scenario`` and ``path``.

    ``split`` picks ``list/<split>.txt`` (first token of each line), or give ``list_file``. Scenarios come
    from ``list/test_split/test*_<scenario>.txt`` when present.
    """

    def __init__(self, root: str, split: str = "test", list_file: Optional[str] = None, transform=None,
                 max_lanes: int = 8, reader: Optional[str] = None):
        self.root, self.transform, self.max_lanes = root, transform, max_lanes
        self.reader = reader or getattr(transform, "reader", "cv2")
        self.frame = get_frame("culane")
        list_file = list_file or os.path.join(root, "list", f"{split}.txt")
        if not os.path.isfile(list_file):
            raise DatasetError(f"CULane list file {list_file} not found (expected list/{split}.txt under {root})")
        self.paths = read_list(list_file)
        if not self.paths:
            raise DatasetError(f"CULane list file {list_file} is empty")
        self.scenarios: Dict[str, str] = {}
        split_dir = os.path.join(root, "list", "test_split")
        if os.path.isdir(split_dir):
            for fname in sorted(os.listdir(split_dir)):
                if fname.endswith(".txt"):
                    name = scenario_name(fname)
                    for p in read_list(os.path.join(split_dir, fname)):
                        self.scenarios[p] = name

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        rel = self.paths[i]
        image = _read_image(os.path.join(self.root, rel.lstrip("/")), self.reader)
        if image.shape[:2] != (self.frame.height, self.frame.width):
            raise DatasetError(f"{rel}: image is {image.shape[1]}x{image.shape[0]}, expected 1640x590 (the CULane frame)")
        label = os.path.join(self.root, os.path.splitext(rel.lstrip("/"))[0] + ".lines.txt")
        if not os.path.isfile(label):
            raise DatasetError(f"missing label {label} for image {rel}")
        lanes = [l for l in read_lines_file(label) if len(l)]
        xs = np.stack([resample_points(l, self.frame.ys) for l in lanes]) if lanes else np.zeros((0, self.frame.rows), np.float32)
        return {
            "image": self.transform(image) if self.transform else image,
            "lanes": lanes,
            "xs": xs,
            "scenario": self.scenarios.get(rel),
            "path": rel,
        }


# ----------------------------------------------------------------------------------------------------------
# TuSimple


class TuSimpleDataset(Dataset):
    """A TuSimple tree: JSON-lines label files (``raw_file``, ``lanes``, ``h_samples``) beside ``clips/``.
    ``split='test'`` reads ``test_label.json``; ``'train'`` every ``label_data_*.json``; or give ``label_files``."""

    def __init__(self, root: str, split: str = "test", label_files: Optional[Sequence[str]] = None, transform=None,
                 reader: Optional[str] = None):
        self.root, self.transform = root, transform
        self.reader = reader or getattr(transform, "reader", "cv2")
        self.frame = get_frame("tusimple")
        if label_files is None:
            if split == "test":
                label_files = [os.path.join(root, "test_label.json")]
            else:
                label_files = sorted(os.path.join(root, f) for f in os.listdir(root) if f.startswith("label_data") and f.endswith(".json")) if os.path.isdir(root) else []
        if not label_files or not all(os.path.isfile(f) for f in label_files):
            raise DatasetError(f"TuSimple label files not found under {root} (split {split!r}): {label_files}")
        self.records = []
        for lf in label_files:
            with open(lf) as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{lf}:{number}: not JSON: {exc}") from None
                    for key in ("raw_file", "lanes", "h_samples"):
                        if key not in rec:
                            raise DatasetError(f"{lf}:{number}: record lacks {key!r}")
                    rec["_source"] = f"{lf}:{number}"
                    self.records.append(rec)
        if not self.records:
            raise DatasetError(f"no TuSimple records in {label_files}")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        image = _read_image(os.path.join(self.root, rec["raw_file"]), self.reader)
        if image.shape[:2] != (self.frame.height, self.frame.width):
            raise DatasetError(f"{rec['raw_file']}: image is {image.shape[1]}x{image.shape[0]}, expected 1280x720")
        lanes = [l for l in lanes_from_tusimple(rec["lanes"], rec["h_samples"], source=rec["_source"]) if len(l)]
        xs = np.stack([resample_points(l, self.frame.ys) for l in lanes]) if lanes else np.zeros((0, self.frame.rows), np.float32)
        return {"image": self.transform(image) if self.transform else image, "lanes": lanes, "xs": xs,
                "scenario": None, "path": rec["raw_file"]}


# ----------------------------------------------------------------------------------------------------------
# Generated scenes in memory


class SyntheticLaneDataset(Dataset):
    """Scenes rendered on the fly at the model's input resolution (no disk). Items: ``image`` (normalised
    float tensor [3, h, w]), ``xs`` ([L, R] ground truth on the frame's rows), ``scenario``, ``seed``.
    ``model_input``, when given, sets the frame, size, crop and normalisation instead."""

    def __init__(self, n: int, seed: int = 0, frame: str = "culane", size: Tuple[int, int] = (400, 160),
                 crop_top: float = 270.0, scenario: Optional[str] = None, mix: Optional[Dict[str, float]] = None,
                 normalize: bool = True, model_input: Optional[ModelInput] = None):
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        self.input = model_input or ModelInput(get_frame(frame), size, crop_top)
        self.frame = self.input.frame
        self.seeds = synth.scene_seeds(seed, n)
        self.scenario, self.mix, self.normalize = scenario, mix, normalize

    def __len__(self) -> int:
        return len(self.seeds)

    def scene(self, i: int) -> synth.Scene:
        return synth.sample_scene(self.seeds[i], self.frame, self.scenario, self.mix)

    def rgb(self, i: int) -> np.ndarray:
        """Scene i rendered at the input size, uint8 RGB [h, w, 3]."""
        return synth.render(self.scene(i), self.input.size, self.input.crop_top).image

    def __getitem__(self, i: int) -> dict:
        scene = self.scene(i)
        rgb = synth.render(scene, self.input.size, self.input.crop_top).image
        image = self.input.normalize(rgb) if self.normalize else torch.from_numpy(rgb).permute(2, 0, 1)
        return {"image": image, "xs": synth.ground_truth(scene), "scenario": scene.scenario, "seed": self.seeds[i]}


def collate_lanes(items: List[dict], ys, max_lanes: Optional[int] = None) -> Tuple[torch.Tensor, LaneSet, List[str]]:
    """Batch of dataset items -> (images [B, ...], LaneSet on rows ``ys`` of the ground truth padded with NaN,
    scenarios)."""
    if not items:
        raise ValueError("collate_lanes: empty batch")
    images = torch.stack([torch.as_tensor(it["image"]) for it in items])
    rows = items[0]["xs"].shape[1]
    width = max_lanes or max(1, max(it["xs"].shape[0] for it in items))
    xs = torch.full((len(items), width, rows), float("nan"))
    scores = torch.full((len(items), width), float("nan"))
    for b, it in enumerate(items):
        n = it["xs"].shape[0]
        if n > width:
            raise ValueError(f"collate_lanes: an image has {n} lanes, more than max_lanes={width}")
        xs[b, :n] = torch.from_numpy(np.asarray(it["xs"], np.float32))
        scores[b, :n] = 1.0
    ys = torch.as_tensor(np.asarray(ys, np.float32))
    if ys.numel() != rows:
        raise ValueError(f"collate_lanes: ys has {ys.numel()} rows but the items have {rows}")
    return images, LaneSet(ys, xs, scores), [it.get("scenario") for it in items]


def calibration_images(n: int, seed: int = 0, dataset: Optional[Dataset] = None, batch_size: int = 64,
                       **synthetic_kwargs) -> torch.Tensor:
    """n unlabelled model inputs [n, 3, h, w] for calibration: generated scenes by default, else the first n
    images of ``dataset`` (whose transform must produce model inputs)."""
    if n <= 0:
        raise ValueError(f"calibration needs at least one image, got n={n}")
    if dataset is None:
        dataset = SyntheticLaneDataset(n, seed=seed, **synthetic_kwargs)
    if len(dataset) < n:
        raise ValueError(f"calibration asked for {n} images but the data set has {len(dataset)}")
    return torch.stack([torch.as_tensor(dataset[i]["image"]) for i in range(n)])
