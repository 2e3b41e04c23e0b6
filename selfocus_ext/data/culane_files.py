"""Reading the CULane layout: list files of image paths, ``.lines.txt`` labels beside the images, and a
prediction directory that mirrors them (a missing prediction file means no lanes)."""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..lanes.formats import LaneFormatError, parse_culane_lines


def read_list(list_file: str) -> List[str]:
    """Image paths of a CULane list file (the first token of each line, e.g. ``/driver_23_30frame/x.MP4/00000.jpg``)."""
    with open(list_file) as f:
        return [line.split()[0] for line in f if line.strip()]


def lines_path(root: str, image_path: str) -> str:
    rel = image_path.lstrip("/")
    stem, _ = os.path.splitext(rel)
    return os.path.join(root, stem + ".lines.txt")


def read_lines_file(path: str, max_lanes: Optional[int] = None) -> List[np.ndarray]:
    """The lanes of a ``.lines.txt`` file; more than ``max_lanes`` lanes is an error naming the file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LaneFormatError(f"{path}: byte {data[exc.start]:#04x} at offset {exc.start} is not text; expected "
                              "'x y x y ...' lines of numbers") from None
    lanes = parse_culane_lines(text, source=path)
    if max_lanes is not None and len(lanes) > max_lanes:
        raise LaneFormatError(f"{path}: {len(lanes)} lanes; at most {max_lanes} per image can be evaluated")
    return lanes


def scenario_name(list_file: str) -> str:
    """``test3_shadow.txt`` -> ``shadow``; other names -> the file's stem."""
    stem = os.path.splitext(os.path.basename(list_file))[0]
    head, _, tail = stem.partition("_")
    return tail if tail and head.startswith("test") and head[4:].isdigit() else stem


def default_lists(gt_root: str) -> List[str]:
    """The nine scenario lists when present (list/test_split/test*_*.txt), else list/test.txt."""
    split = os.path.join(gt_root, "list", "test_split")
    if os.path.isdir(split):
        files = sorted(f for f in os.listdir(split) if f.startswith("test") and f.endswith(".txt"))
        if files:
            return [os.path.join(split, f) for f in files]
    test = os.path.join(gt_root, "list", "test.txt")
    if os.path.isfile(test):
        return [test]
    raise FileNotFoundError(f"no list files under {gt_root}/list (expected test_split/test*_*.txt or test.txt); pass --list")


def load_pairs(pred_dir: str, gt_root: str, list_file: str, progress: Optional[object] = None,
               max_lanes: Optional[int] = None) -> Tuple[Sequence, Sequence]:
    """(predictions, ground truth) of every image of a list file (at most ``max_lanes`` lanes per file)."""
    preds, gts = [], []
    for image in read_list(list_file):
        gt_file = lines_path(gt_root, image)
        if not os.path.isfile(gt_file):
            raise FileNotFoundError(f"{list_file}: no ground truth {gt_file} for image {image}")
        gts.append(read_lines_file(gt_file, max_lanes))
        pred_file = lines_path(pred_dir, image)
        preds.append(read_lines_file(pred_file, max_lanes) if os.path.isfile(pred_file) else [])
        if progress is not None:
            progress.update(1)
    return preds, gts
