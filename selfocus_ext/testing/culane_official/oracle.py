"""Builds and runs the official CULane evaluator (the unmodified sources in shared/reference/culane-official)
and a per-image driver compiled against the same sources (per_image_counts.cpp)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DEFAULT_SOURCES = os.path.join(os.path.dirname(REPO), "shared", "reference", "culane-official")
DEFAULT_BUILD = os.path.join(REPO, "build", "culane-official")

Counts = Tuple[int, int, int]  # tp, fp, fn


class OracleUnavailable(RuntimeError):
    """The official tool cannot be built here (no sources, no compiler or no OpenCV development files)."""


def _opencv_flags() -> List[str]:
    for pkg in ("opencv4", "opencv"):
        if shutil.which("pkg-config") and subprocess.run(["pkg-config", "--exists", pkg]).returncode == 0:
            out = subprocess.run(["pkg-config", "--cflags", "--libs", pkg], capture_output=True, text=True, check=True)
            return out.stdout.split()
    raise OracleUnavailable("OpenCV development files not found (apt-get install libopencv-dev)")


def build(sources: str = DEFAULT_SOURCES, out: str = DEFAULT_BUILD) -> Tuple[str, str]:
    """(evaluate, per_image_counts) executables, built once into ``out``."""
    if not os.path.isfile(os.path.join(sources, "build.sh")):
        raise OracleUnavailable(f"official evaluator sources not found at {sources}")
    if shutil.which("g++") is None:
        raise OracleUnavailable("g++ not found")
    cv = _opencv_flags()
    os.makedirs(out, exist_ok=True)
    evaluate = os.path.join(out, "evaluate")
    driver = os.path.join(out, "per_image_counts")
    harness = os.path.join(HERE, "per_image_counts.cpp")
    if not os.path.isfile(evaluate):
        subprocess.run(["bash", os.path.join(sources, "build.sh"), out], check=True, capture_output=True)
    if not os.path.isfile(driver) or os.path.getmtime(driver) < os.path.getmtime(harness):
        inc = os.path.join(sources, "include")
        src = os.path.join(sources, "src")
        common = ["g++", "-std=c++11", "-O2", "-fopenmp", f"-I{inc}"]
        obj = os.path.join(out, "evaluate_as_library.o")
        # The official evaluate.cpp holds read_lane_file beside main; renaming main lets the driver use it.
        subprocess.run(common + ["-Dmain=official_evaluate_main", "-c", os.path.join(src, "evaluate.cpp"), "-o", obj]
                       + [f for f in cv if f.startswith("-I")], check=True, capture_output=True)
        subprocess.run(common + [harness] + [os.path.join(src, f) for f in ("counter.cpp", "lane_compare.cpp", "spline.cpp")]
                       + [obj, "-o", driver] + cv, check=True, capture_output=True)
    return evaluate, driver


def _root(path: str) -> str:
    return path.rstrip("/") + "/"  # the official tool concatenates roots and list entries


def list_counts(evaluate: str, gt_root: str, pred_root: str, list_file: str, iou: float = 0.5,
                width: int = 1640, height: int = 590, lane_width: int = 30, workdir: Optional[str] = None) -> Counts:
    """TP/FP/FN of one list file, from the official evaluate command itself."""
    out = os.path.join(workdir or os.path.dirname(list_file), os.path.basename(list_file) + f".official-{iou}.txt")
    subprocess.run([evaluate, "-a", _root(gt_root), "-d", _root(pred_root), "-i", _root(gt_root), "-l", list_file,
                    "-w", str(lane_width), "-t", str(iou), "-c", str(width), "-r", str(height), "-f", "1", "-o", out],
                   check=True, capture_output=True)
    with open(out) as f:
        m = re.search(r"tp: (\d+) fp: (\d+) fn: (\d+)", f.read())
    if m is None:
        raise RuntimeError(f"unexpected output of the official tool in {out}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def image_counts(driver: str, gt_root: str, pred_root: str, list_file: str, iou: float = 0.5,
                 width: int = 1640, height: int = 590, lane_width: int = 30,
                 with_iou: bool = False) -> List[Tuple[Counts, Optional[List[float]]]]:
    """Per image of the list: official (tp, fp, fn), and with ``with_iou`` the official similarities."""
    args = [driver, _root(gt_root), _root(pred_root), list_file, str(width), str(height), str(lane_width), str(iou)]
    if with_iou:
        args.append("iou")
    run = subprocess.run(args, check=True, capture_output=True, text=True)
    rows = []
    for line in run.stdout.splitlines():
        head, _, tail = line.partition("|")
        tp, fp, fn = (int(v) for v in head.split())
        rows.append(((tp, fp, fn), [float(v) for v in tail.split()] if with_iou else None))
    return rows


def summed(rows: List[Counts]) -> Counts:
    return tuple(sum(c[i] for c in rows) for i in range(3))  # type: ignore[return-value]

