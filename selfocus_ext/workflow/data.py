"""``--data`` specifications: generated scenes, or a CULane / TuSimple tree; calibration and test sets."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np
import torch

from ..data.datasets import CULaneDataset, ModelInput, SyntheticLaneDataset, TuSimpleDataset
from ..data.layouts import TUSIMPLE_MIX
from ..lanes.frames import get_frame

DATA_HELP = "synth (generated scenes), culane:ROOT or tusimple:ROOT"
# TuSimple images keep the frame below row 330: the share of the frame the CULane input keeps.
TUSIMPLE_CROP = 330.0
# The seed of the generated test scenes (the tune job, the evaluate command, the model cards).
TEST_SEED = 20261126
# Rendered test scenes kept in memory up to this size (2000 scenes at 400x160 take 384 MB).
SCENE_MEMO_BYTES = 1 << 30


@dataclass(frozen=True)
class DataSpec:
    kind: str  # "synth" | "culane" | "tusimple"
    root: Optional[str] = None

    def __str__(self) -> str:
        return self.kind if self.root is None else f"{self.kind}:{self.root}"


def parse_data(text: str) -> DataSpec:
    """Checks the spec and, for a data set, that ROOT holds its layout."""
    if text == "synth":
        return DataSpec("synth")
    kind, sep, root = text.partition(":")
    if not sep or kind not in ("culane", "tusimple") or not root:
        raise ValueError(f"--data must be {DATA_HELP}; got {text!r}")
    if not os.path.isdir(root):
        raise ValueError(f"--data {text}: {root} is not a directory")
    if kind == "culane":
        lists = [os.path.join(root, "list", f) for f in ("train.txt", "test.txt")]
        if not any(os.path.isfile(f) for f in lists):
            raise ValueError(f"--data {text}: not a CULane layout (no list/train.txt or list/test.txt under {root})")
    else:
        names = os.listdir(root)
        if "test_label.json" not in names and not any(n.startswith("label_data") and n.endswith(".json") for n in names):
            raise ValueError(f"--data {text}: not a TuSimple layout (no test_label.json or label_data_*.json in {root})")
    return DataSpec(kind, root)


def model_input_for(spec: DataSpec, base: ModelInput, model: Optional[str] = None) -> ModelInput:
    """The zoo models' input geometry on the data's frame. A published model keeps its implementation's
    input; data of another frame than the one it was published for is an error."""
    from ..models.registry import published_names

    if model is not None and model in published_names():
        frame = "tusimple" if spec.kind == "tusimple" else "culane"
        if frame != base.frame.name:
            raise ValueError(f"{model} is published for {base.frame.name} images ({base.size[0]}x{base.size[1]} "
                             f"input); {spec} holds {frame} images")
        return base
    if spec.kind == "tusimple":
        return ModelInput(get_frame("tusimple"), base.size, TUSIMPLE_CROP)
    return base


def has_training_split(spec: DataSpec) -> bool:
    """Whether the data set has training images to calibrate on (CULane list/train.txt; TuSimple
    label_data_*.json); generated scenes always do."""
    if spec.kind == "synth":
        return True
    if spec.kind == "culane":
        return os.path.isfile(os.path.join(spec.root, "list", "train.txt"))
    return any(n.startswith("label_data") and n.endswith(".json") for n in os.listdir(spec.root))


def require_training_split(spec: DataSpec) -> None:
    """Calibration and held-out images come from the training split only, never from the test images."""
    if not has_training_split(spec):
        where = "list/train.txt" if spec.kind == "culane" else "label_data_*.json"
        raise ValueError(f"--data {spec}: no training split ({where}); calibration draws only from training "
                         "images, never from the test images the model is scored on")


def _dataset(spec: DataSpec, split: str, transform=None, reader: Optional[str] = None):
    if split == "train":
        require_training_split(spec)
    if spec.kind == "culane":
        return CULaneDataset(spec.root, split, transform=transform, reader=reader)
    return TuSimpleDataset(spec.root, split, transform=transform, reader=reader)


def calibration_set(spec: DataSpec, n: int, seed: int, model_input: ModelInput, progress=lambda it: it) -> torch.Tensor:
    """n unlabelled model inputs: generated scenes, or a seeded random choice of the data set's training images."""
    if n <= 0:
        raise ValueError(f"--calib must be positive, got {n}")
    ds, idx = _unlabelled(spec, n, 0, seed, model_input)
    return torch.stack([torch.as_tensor(ds[i]["image"]) for i in progress(idx)])


def heldout_set(spec: DataSpec, n: int, calib: int, seed: int, model_input: ModelInput) -> torch.Tensor:
    """n unlabelled model inputs drawn like the calibration set of ``calib`` images and ``seed`` but disjoint
    from it: generated scenes ``calib .. calib + n`` of the same scene stream, or a seeded choice among the
    training images the calibration set left out."""
    if n <= 0:
        raise ValueError(f"held-out images: expected a positive count, got {n}")
    ds, idx = _unlabelled(spec, calib, n, seed, model_input)
    return torch.stack([torch.as_tensor(ds[i]["image"]) for i in idx])


def _unlabelled(spec: DataSpec, calib: int, heldout: int, seed: int, model_input: ModelInput):
    """The data set and the indices of the calibration images (``heldout`` == 0) or of ``heldout`` images
    after them."""
    if spec.kind == "synth":
        ds = SyntheticLaneDataset(calib + heldout, seed=seed, frame=model_input.frame.name, size=model_input.size,
                                  crop_top=model_input.crop_top)
        return ds, range(calib, calib + heldout) if heldout else range(calib)
    ds = _dataset(spec, "train", model_input)  # refuses a data set without a training split
    if len(ds) < calib + heldout:
        what = f"--calib {calib}" + (f" and {heldout} held-out images" if heldout else "")
        raise ValueError(f"{what}: the data set has only {len(ds)} training images")
    chosen = np.random.default_rng(seed).choice(len(ds), calib, replace=False)
    if not heldout:
        return ds, sorted(chosen.tolist())
    rest = np.setdiff1d(np.arange(len(ds)), chosen)
    return ds, sorted(np.random.default_rng([seed, 1]).choice(rest, heldout, replace=False).tolist())


@dataclass
class EvalSet:
    """Test images with their ground truth, read batch by batch: ``items(i0, i1)`` -> (model inputs, labels),
    each label a dict with ``lanes`` (point arrays, frame pixels), ``xs`` ([L, R] on the frame's rows) and
    ``scenario``; ``raw(i)`` is image i as uint8 RGB at the model's input size (for drawings)."""

    metric: str  # "culane" or "tusimple"
    model_input: ModelInput
    count: int
    items: Callable[[int, int], Tuple[torch.Tensor, List[dict]]]
    raw: Callable[[int], np.ndarray]


def _points(xs: np.ndarray, ys: np.ndarray) -> List[np.ndarray]:
    return [np.stack([l[~np.isnan(l)], ys[~np.isnan(l)]], 1) for l in xs if (~np.isnan(l)).sum() >= 2]


def evaluation_set(spec: DataSpec, n: Optional[int], model_input: ModelInput, seed: int = TEST_SEED) -> EvalSet:
    """The generated test set (n scenes, fixed seed), or the data set's test split (with n, a seeded choice of
    n images spread over the list: ``scored_subset``). Generated scenes follow the model input's frame:
    CULane's default scenario mix scored with the CULane metric, or on the TuSimple frame the TuSimple mix
    (seeds from seed + 1) scored as TuSimple."""
    ys = model_input.frame.ys
    if spec.kind == "synth":
        n = n or 1000
        tusimple = model_input.frame.name == "tusimple"
        ds = SyntheticLaneDataset(n, seed=seed + 1 if tusimple else seed, mix=TUSIMPLE_MIX if tusimple else None,
                                  model_input=model_input, normalize=False)
        w, h = model_input.size
        # A run scores the same scenes several times (FP, calibrated, tuned model): the rendered uint8 images
        # are kept for the set's lifetime when they fit, so each scene is drawn once.
        memo: Optional[dict] = {} if n * w * h * 3 <= SCENE_MEMO_BYTES else None

        def scene(i):
            got = memo.get(i) if memo is not None else None
            if got is None:
                g = ds[i]
                got = (g["image"].permute(1, 2, 0).numpy(),
                       {"lanes": _points(g["xs"], ys), "xs": g["xs"], "scenario": g["scenario"]})
                if memo is not None:
                    memo[i] = got
            return got

        def items(i0, i1):
            got = [scene(i) for i in range(i0, i1)]
            if not got:
                return torch.empty(0, 3, h, w), []
            return model_input.normalize(np.stack([g[0] for g in got])), [dict(g[1]) for g in got]

        return EvalSet("tusimple" if tusimple else "culane", model_input, n, items, ds.rgb)
    ds = _dataset(spec, "test", reader=model_input.reader)
    chosen = scored_subset(len(ds), n, seed)

    def raw(i):
        img = ds[chosen[i]]["image"]
        return cv2.resize(img[int(round(model_input.crop_top)):], model_input.size, interpolation=cv2.INTER_AREA)

    def items(i0, i1):
        got = [ds[chosen[i]] for i in range(i0, i1)]
        return torch.stack([model_input(g["image"]) for g in got]), got

    return EvalSet(spec.kind, model_input, len(chosen), items, raw)


def scored_subset(total: int, n: Optional[int], seed: int = TEST_SEED) -> List[int]:
    """Indices of the test images scored: all of them, or with ``n`` a seeded random choice of n spread over
    the whole list (in list order), so a short run samples every scenario rather than the first files."""
    if not n or n >= total:
        return list(range(total))
    return sorted(np.random.default_rng(seed).choice(total, n, replace=False).tolist())
