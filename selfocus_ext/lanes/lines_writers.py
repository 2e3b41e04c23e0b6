"""The ``.lines.txt`` text each implementation's CULane test script writes for its predicted lanes: the same
points, number formatting, separators and line ends, so a user's predictions compare with published ones
file for file.

Each writer takes the lanes of one image as (N, 2) arrays of (x, y) original-frame pixels in the order the
implementation writes them, holding the exact values it formats (``decode_points`` of the published models).
Where an implementation formats with ``"{}"``, the printed digits depend on the scalar type it holds
(a Python float prints the double's shortest repr, a numpy float32 the float32's), so that writer is told
the type of each coordinate.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np

_SCALARS: Dict[str, Callable] = {"float": float, "float32": np.float32, "int": int}


def pad_text(lanes: Sequence[np.ndarray], x_type: str = "float", y_type: str = "int") -> str:
    """pytorch-auto-drive (``LaneDetTester.test_one_set``): ``"{} {} "`` per point, a line end per lane."""
    if x_type not in _SCALARS or y_type not in _SCALARS:
        raise ValueError(f"x_type and y_type must be among {sorted(_SCALARS)}, got {x_type!r}, {y_type!r}")
    fx, fy = _SCALARS[x_type], _SCALARS[y_type]
    return "".join("".join("{} {} ".format(fx(x), fy(y)) for x, y in lane) + "\n" for lane in lanes if len(lane))


def integer_text(lanes: Sequence[np.ndarray]) -> str:
    """UFLD's ``generate_lines`` and the official RESA's evaluator: ``'%d %d '`` per point, a line end per lane."""
    return "".join("".join("%d %d " % (x, y) for x, y in lane) + "\n" for lane in lanes)


def two_decimals_text(lanes: Sequence[np.ndarray]) -> str:
    """CondLaneNet's and GANet's ``out_result``: ``'{:.2f}'`` coordinates separated by spaces, the last one
    of a lane followed by its line end."""
    out = []
    for lane in lanes:
        values = ["{:.2f}".format(v) for point in lane for v in point]
        if values:
            out.append(" ".join(values) + "\n")
    return "".join(out)


def five_decimals_text(lanes: Sequence[np.ndarray]) -> str:
    """CLRNet's and the official LaneATT's ``get_prediction_string``: ``'{:.5f} {:.5f}'`` points joined by
    spaces, lanes joined by line ends, no line end after the last; lanes without points are left out."""
    rows = [" ".join("{:.5f} {:.5f}".format(x, y) for x, y in lane) for lane in lanes]
    return "\n".join(r for r in rows if r)


WRITERS: Dict[str, Callable[..., str]] = {
    "pad": pad_text,
    "integer": integer_text,
    "two-decimals": two_decimals_text,
    "five-decimals": five_decimals_text,
}
