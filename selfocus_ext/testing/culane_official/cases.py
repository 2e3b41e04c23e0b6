"""Random CULane-layout trees of ground truth and predictions that exercise every corner of the metric:
lanes partly or wholly off each side of the image, 2-point and 1-point lanes, consecutive repeated points,
predictions at IoUs near 0.5, more ground truth than predictions and the reverse, up to 8 lanes per image,
empty files, blank lines, Windows line ends, far-away and beyond-float32 coordinates (not between 1e6 and
the int range, where the official tool walks every row up to the image: seconds a segment), missing prediction
files, and numbers written in several formats."""
from __future__ import annotations

import os
from typing import List, Sequence

import numpy as np

WIDTH, HEIGHT = 1640, 590
LISTS = ("test0_normal", "test1_crowd", "test2_hlight", "test3_shadow", "test4_noline", "test5_arrow",
         "test6_curve", "test7_cross", "test8_night")
KINDS = ("road", "road", "road", "partly_off", "off_side", "two_point", "one_point", "repeated", "scribble", "far")


def road_lane(rng: np.random.Generator) -> np.ndarray:
    """A lane on label rows: x = x0 + slope t + curvature t^2 (+ noise), rows every 10 or 20 px."""
    step = rng.choice([10, 20, 10, 30])
    y_start = rng.choice([590, 590, 580, rng.uniform(300, 700)])
    n = int(rng.integers(2, 60))
    ys = y_start - step * np.arange(n)
    t = y_start - ys
    x0 = rng.uniform(-200, WIDTH + 200)
    xs = x0 + rng.uniform(-3, 3) * t + rng.uniform(-0.004, 0.004) * t * t + rng.normal(0, rng.choice([0, 0.5, 3]), n)
    return np.stack([xs, ys], 1)


def off_side(rng: np.random.Generator) -> np.ndarray:
    """A lane beside one side of the image: entirely outside, or close enough for the 30 px pen to enter."""
    lane = road_lane(rng)
    gap = rng.choice([rng.uniform(0, 20), rng.uniform(20, 400)])  # within the pen's reach, or beyond it
    side = rng.integers(4)
    if side == 0:
        lane[:, 0] += -gap - lane[:, 0].max()
    elif side == 1:
        lane[:, 0] += WIDTH - 1 + gap - lane[:, 0].min()
    elif side == 2:
        lane[:, 1] += -gap - lane[:, 1].max()
    else:
        lane[:, 1] += HEIGHT - 1 + gap - lane[:, 1].min()
    return lane


def partly_off(rng: np.random.Generator) -> np.ndarray:
    lane = road_lane(rng)
    axis = rng.integers(2)
    size = (WIDTH, HEIGHT)[axis]
    lo, hi = lane[:, axis].min(), lane[:, axis].max()
    edge = rng.choice([0.0, size - 1.0])
    lane[:, axis] += edge + rng.uniform(-0.5, 0.5) * (hi - lo + 1) - (lo + hi) / 2
    return lane


def random_lane(rng: np.random.Generator) -> np.ndarray:
    kind = KINDS[rng.integers(len(KINDS))]
    if kind == "road":
        return road_lane(rng)
    if kind == "partly_off":
        return partly_off(rng)
    if kind == "off_side":
        return off_side(rng)
    if kind == "two_point":
        return np.stack([rng.uniform(-300, WIDTH + 300, 2), rng.uniform(-200, HEIGHT + 200, 2)], 1)
    if kind == "one_point":
        return np.array([[rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)]])
    if kind == "repeated":
        lane = road_lane(rng)
        reps = rng.integers(1, 3, len(lane))  # some points written twice or three times in a row
        return np.repeat(lane, reps, axis=0)
    if kind == "scribble":  # unordered points: the spline loops and doubles back
        n = int(rng.integers(3, 7))
        return np.stack([rng.uniform(-400, WIDTH + 400, n), rng.uniform(-300, HEIGHT + 300, n)], 1)
    lane = road_lane(rng)  # "far": one point far outside, some beyond float32's range
    i = int(rng.integers(len(lane)))
    # beyond float32 (infinite after reading) is rare: the official tool spends seconds on each such pair
    far = 1e39 if rng.random() < 0.003 else rng.choice([1e4, 3e5, 1e30])
    lane[i, rng.integers(2)] = rng.choice([-1, 1]) * far
    return lane


def prediction_of(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """A prediction of a GT lane: shifted (often by 8-14 px, where a 30 px lane's IoU crosses 0.5), noisy,
    sometimes resampled on fewer rows or cut short."""
    shift = rng.choice([rng.uniform(-4, 4), rng.uniform(8, 14) * rng.choice([-1, 1]), rng.uniform(-40, 40)])
    lane = gt + np.array([shift, 0.0]) + np.stack([rng.normal(0, rng.choice([0, 1, 4]), len(gt)), np.zeros(len(gt))], 1)
    if len(lane) > 4 and rng.random() < 0.3:
        lane = lane[:: int(rng.integers(2, 4))]
    if len(lane) > 4 and rng.random() < 0.2:
        lane = lane[: int(rng.integers(2, len(lane)))]
    return lane


def image_lanes(rng: np.random.Generator):
    """(ground truth, predictions) of one image, at most 8 lanes each."""
    n_gt = int(rng.choice([0, 1, 2, 3, 4, 4, 5, 6, 8]))
    gt = [random_lane(rng) for _ in range(n_gt)]
    pred = [prediction_of(rng, g) for g in gt if rng.random() < 0.8]
    pred += [random_lane(rng) for _ in range(int(rng.choice([0, 0, 1, 2, 4])))]
    order = rng.permutation(len(pred))
    pred = [pred[i] for i in order][:8]
    return gt, pred


def format_value(v: float, style: str) -> str:
    if style == "int":
        return str(int(round(v))) if abs(v) < 1e15 else repr(float(v))
    if style == "exp":
        return f"{v:.6e}"
    if style == "repr":
        return repr(float(v))
    return f"{v:.{style}f}" if abs(v) < 1e15 else repr(float(v))


def lines_text(rng: np.random.Generator, lanes: Sequence[np.ndarray]) -> str:
    style = rng.choice(["3", "3", "1", "int", "exp", "repr", "2"])
    end = "\r\n" if rng.random() < 0.05 else "\n"
    rows: List[str] = []
    for lane in lanes:
        rows.append(" ".join(f"{format_value(x, style)} {format_value(y, style)}" for x, y in lane)
                    + (" " if rng.random() < 0.1 else ""))
    if rows and rng.random() < 0.03:
        rows.insert(int(rng.integers(len(rows) + 1)), "")  # a blank line: an empty lane
    if not rows:
        return "" if rng.random() < 0.8 else "\n"  # an empty file, or one blank line
    return end.join(rows) + (end if rng.random() < 0.9 else "")


def write_tree(root: str, images: int, seed: int, missing_prediction: float = 0.03) -> List[str]:
    """Writes ROOT/gt, ROOT/pred and ROOT/list/test_split/*.txt; returns the list files."""
    rng = np.random.default_rng(seed)
    gt_root, pred_root = os.path.join(root, "gt"), os.path.join(root, "pred")
    split = os.path.join(root, "list", "test_split")
    os.makedirs(split, exist_ok=True)
    entries: List[List[str]] = [[] for _ in LISTS]
    for i in range(images):
        rel = f"driver_{i % 7}/clip_{i // 100:04d}/{i:05d}"
        gt, pred = image_lanes(rng)
        for base, lanes, keep in ((gt_root, gt, 1.0), (pred_root, pred, 1.0 - missing_prediction)):
            if rng.random() >= keep:
                continue  # no prediction file: the official tool reads it as no lanes
            path = os.path.join(base, rel + ".lines.txt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", newline="") as f:
                f.write(lines_text(rng, lanes))
        entries[i % len(LISTS)].append(f"/{rel}.jpg")
    lists = []
    for name, rows in zip(LISTS, entries):
        path = os.path.join(split, name + ".txt")
        with open(path, "w") as f:
            f.write("".join(r + "\n" for r in rows))
        lists.append(path)
    return lists
