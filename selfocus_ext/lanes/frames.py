"""Image frames: the size of the original image and the fixed rows lanes are sampled on."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Union

import numpy as np


@dataclass(frozen=True)
class Frame:
    """An original image frame: ``width`` x ``height`` pixels, lanes sampled at the rows ``ys`` (pixels)."""

    name: str
    width: int
    height: int
    ys: np.ndarray = field(repr=False)

    def __post_init__(self):
        ys = np.asarray(self.ys, dtype=np.float32)
        if ys.ndim != 1 or ys.size == 0:
            raise ValueError(f"Frame {self.name!r}: ys must be a non-empty 1-D array of rows, got shape {ys.shape}")
        if not np.all(np.isfinite(ys)):
            raise ValueError(f"Frame {self.name!r}: ys must be finite")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Frame {self.name!r}: width and height must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "ys", ys)

    @property
    def rows(self) -> int:
        return int(self.ys.size)


# CULane: 1640x590 images; rows every 10 px from the bottom (y = 590, 580, ..., 10), the rows CULane's
# annotations use.
CULANE = Frame("culane", 1640, 590, np.arange(590, 0, -10, dtype=np.float32))
# TuSimple: 1280x720 images; h_samples 160, 170, ..., 710.
TUSIMPLE = Frame("tusimple", 1280, 720, np.arange(160, 720, 10, dtype=np.float32))

FRAMES: Dict[str, Frame] = {"culane": CULANE, "tusimple": TUSIMPLE}


def get_frame(frame: Union[str, Frame]) -> Frame:
    """A frame by name (``culane``, ``tusimple``) or the frame itself."""
    if isinstance(frame, Frame):
        return frame
    try:
        return FRAMES[frame]
    except KeyError:
        raise ValueError(f"unknown frame {frame!r}; expected one of {sorted(FRAMES)} or a Frame") from None
