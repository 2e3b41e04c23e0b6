"""Image frames: the size of the original image and the fixed rows lanes are sampled on; the transform from
a frame image to a model's input and back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple, Union

import numpy as np
import torch

from . import preprocess


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


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelInput:
    """Frame image -> model input: crop the rows below ``crop_top``, resize to ``size`` = (width, height),
    scale to [0, 1] and normalise (``mean``, ``std`` per RGB channel on the 0-1 scale). ``reader``, ``resize``
    and ``arithmetic`` say how an implementation does it (``lanes.preprocess``: the decoding library, the
    interpolation, the float arithmetic); the zoo's models read with OpenCV and resize with ``INTER_AREA``.
    ``to_frame`` / ``to_input`` map coordinates between the two."""

    frame: Frame
    size: Tuple[int, int] = (400, 160)
    crop_top: float = 270.0
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    reader: str = "cv2"
    resize: str = "area"
    arithmetic: str = "float32"

    def __post_init__(self):
        preprocess.check_choice("ModelInput reader", self.reader, preprocess.READERS)
        preprocess.check_choice("ModelInput resize", self.resize, preprocess.RESIZES)
        preprocess.check_choice("ModelInput arithmetic", self.arithmetic, preprocess.ARITHMETIC)

    @property
    def scale(self) -> Tuple[float, float]:
        return self.size[0] / self.frame.width, self.size[1] / (self.frame.height - self.crop_top)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.shape[:2] != (self.frame.height, self.frame.width):
            raise ValueError(
                f"image of shape {image.shape[:2]} does not match the {self.frame.name} frame "
                f"({self.frame.height}x{self.frame.width})"
            )
        crop = image[int(round(self.crop_top)):]
        small = preprocess.resize(crop, self.size, self.resize, bgr=self.reader == "cv2")
        if small.dtype == np.float32:  # resized in float (the official RESA): normalised without a table
            return preprocess.normalize_float(small, self.mean, self.std)
        return self.normalize(small)

    def load(self, path: str) -> torch.Tensor:
        """The image file at ``path`` -> the model input [3, h, w], decoded with this input's ``reader``."""
        image = preprocess.read_image(path, self.reader)
        if image is None:
            raise ValueError(f"cannot decode image {path} (missing, corrupt or not an image)")
        return self(image)

    def normalize(self, rgb: np.ndarray) -> torch.Tensor:
        """uint8 RGB images at the input size, [h, w, 3] or [N, h, w, 3] -> normalised [3, h, w] / [N, 3, h, w]
        (contiguous: one memory layout for the convolutions, whichever way the batch was assembled)."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim not in (3, 4) or rgb.shape[-1] != 3:
            raise ValueError(f"rgb: expected uint8 images [h, w, 3] or [N, h, w, 3], got {rgb.dtype} {rgb.shape}")
        # A table of the 256 normalised values per channel, computed with the same float32 operations as
        # ((v / 255) - mean) / std, then one lookup per pixel: the same values, a few times faster.
        lut = preprocess.normalization_table(tuple(self.mean), tuple(self.std), self.arithmetic)
        out = np.empty(rgb.shape[:-3] + (3,) + rgb.shape[-3:-1], np.float32)
        for c in range(3):
            np.take(lut[c], rgb[..., c], out=out[..., c, :, :])
        return torch.from_numpy(out)

    def to_input(self, x, y):
        sx, sy = self.scale
        return (np.asarray(x) + 0.5) * sx - 0.5, (np.asarray(y) - self.crop_top + 0.5) * sy - 0.5

    def to_frame(self, u, v):
        sx, sy = self.scale
        return (np.asarray(u) + 0.5) / sx - 0.5, (np.asarray(v) + 0.5) / sy - 0.5 + self.crop_top
