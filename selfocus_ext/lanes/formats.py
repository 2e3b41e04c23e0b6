"""Lane file formats: CULane ``.lines.txt`` text and TuSimple JSON lanes."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np


class LaneFormatError(ValueError):
    """A lane file or record that does not follow its format."""


def parse_culane_lines(text: str, source: str = "<text>") -> List[np.ndarray]:
    """Lanes of a CULane ``.lines.txt``: one lane per line, ``x y x y ...``.

    Lines end at "\n" only, as the official tool's getline reads them ("\r" is whitespace); a blank line
    is an empty lane (the official tool counts it as a lane: it becomes a prediction that matches nothing).
    Values are read as doubles, then rounded to float32 (the official tool's cv::Point2f). Returns (N, 2)
    float32 arrays of (x, y).
    """
    lanes = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the text ends with a newline: no lane after it
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        try:
            values = np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise LaneFormatError(f"{source}:{number}: non-numeric value {bad!r}") from None
        if len(values) % 2:
            raise LaneFormatError(f"{source}:{number}: odd number of values ({len(values)}); expected x y pairs")
        if not np.all(np.isfinite(values)):
            raise LaneFormatError(f"{source}:{number}: infinite or NaN coordinate")
        with np.errstate(over="ignore"):  # beyond float32's range: infinite, as in the official tool
            lanes.append(values.reshape(-1, 2).astype(np.float32))
    return lanes


def _is_float(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def format_culane_lines(lanes: Sequence[np.ndarray]) -> str:
    """CULane ``.lines.txt`` text of (N, 2) lanes (x with 3 decimals, y as given)."""
    lines = []
    for lane in lanes:
        pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
        lines.append(" ".join(f"{x:.3f} {y:g}" for x, y in pts))
    return "\n".join(lines) + ("\n" if lines else "")


def lanes_from_tusimple(lanes: Sequence[Sequence[float]], h_samples: Sequence[float], source: str = "<json>") -> List[np.ndarray]:
    """TuSimple lanes (x per h_sample, -2 = no point) as (N, 2) arrays of (x, y); empty lanes are kept."""
    h = np.asarray(h_samples, dtype=np.float64)
    out = []
    for i, lane in enumerate(lanes):
        xs = np.asarray(lane, dtype=np.float64)
        if xs.shape != h.shape:
            raise LaneFormatError(f"{source}: lane {i} has {xs.size} values but h_samples has {h.size}")
        if not np.all(np.isfinite(xs)):
            raise LaneFormatError(f"{source}: lane {i} has a non-finite x")
        keep = xs >= 0
        out.append(np.stack([xs[keep], h[keep]], axis=1).astype(np.float32))
    return out


def lanes_to_tusimple(xs_rows: np.ndarray, decimals: Optional[int] = 3, keep_absent: bool = False) -> List[list]:
    """TuSimple ``lanes`` from [L, R] x values on the h_samples rows (NaN -> -2). x is rounded to ``decimals``
    (0: integers, as the TuSimple labels; None: kept exact); lanes without a point are dropped unless
    ``keep_absent``."""
    out = []
    for lane in np.asarray(xs_rows, dtype=np.float64):
        if np.isnan(lane).all() and not keep_absent:
            continue
        if decimals is None:
            out.append([-2.0 if np.isnan(x) else float(x) for x in lane])
        elif decimals == 0:
            out.append([-2 if np.isnan(x) else int(round(float(x))) for x in lane])
        else:
            out.append([-2 if np.isnan(x) else round(float(x), decimals) for x in lane])
    return out
