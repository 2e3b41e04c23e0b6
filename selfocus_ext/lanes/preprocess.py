"""The pixel arithmetic of the implementations' test transforms: how the image file is decoded, resized and
normalised, so that a published checkpoint sees the numbers it was trained on.

Each implementation's chain is one of a few: the image decoded by OpenCV (BGR) or by PIL (RGB); resized by
OpenCV (``INTER_AREA``, ``INTER_LINEAR`` or ``INTER_CUBIC``, on the uint8 image or, for the official RESA,
on the float32 image) or by PIL (bilinear); normalised in float32 as torchvision's ``ToTensor`` and
``Normalize`` do, in float64 as numpy does it (``img / 255.``, then float32), or as mmcv's ``imnormalize``
does it (OpenCV's float32 subtract and multiply by the inverse standard deviation). The channel order is
the network's concern (a BGR network's first convolution is flipped on loading), so every transform here
takes and gives RGB. The normalisation is a function of the pixel value alone, so it is a 256-entry table
per channel built with the implementation's own operations: exact by construction.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np
import torch

READERS = ("cv2", "pil")
RESIZES = ("area", "cv2-linear", "cv2-cubic", "cv2-cubic-float", "pil-bilinear")
ARITHMETIC = ("float32", "float64", "mmcv")


def check_choice(what: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what}: expected one of {list(choices)}, got {value!r}")


def read_image(path: str, reader: str = "cv2") -> np.ndarray:
    """The image file as uint8 RGB [h, w, 3], decoded by the implementation's library (JPEG decoders differ
    in their last bits); None where the file cannot be decoded."""
    check_choice("reader", reader, READERS)
    if reader == "pil":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError):
            return None
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else np.ascontiguousarray(img[..., ::-1])


def resize(rgb: np.ndarray, size: Tuple[int, int], method: str, bgr: bool = False) -> np.ndarray:
    """uint8 RGB [h, w, 3] -> [size[1], size[0], 3]; uint8, or float32 for ``cv2-cubic-float`` (the image cast
    to float32 first, as the official RESA does, so cubic overshoot is kept). ``bgr``: resize in BGR order, as
    an implementation that reads with OpenCV does (OpenCV's vectorised resize rounds an interleaved channel
    by its position), and give RGB back."""
    check_choice("resize", method, RESIZES)
    if bgr:
        return resize(np.ascontiguousarray(rgb[..., ::-1]), size, method)[..., ::-1]
    w, h = int(size[0]), int(size[1])
    if method == "pil-bilinear":
        from PIL import Image

        return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((w, h), Image.BILINEAR))
    import cv2

    if method == "cv2-cubic-float":
        return cv2.resize(np.ascontiguousarray(rgb, np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    flag = {"area": cv2.INTER_AREA, "cv2-linear": cv2.INTER_LINEAR, "cv2-cubic": cv2.INTER_CUBIC}[method]
    return cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=flag)


@functools.lru_cache(maxsize=16)
def normalization_table(mean: Tuple[float, ...], std: Tuple[float, ...], arithmetic: str = "float32") -> np.ndarray:
    """[3, 256] float32: the normalised value of each uint8 pixel value per RGB channel, ``mean`` and ``std``
    on the 0-1 scale, computed with the implementation's arithmetic."""
    check_choice("arithmetic", arithmetic, ARITHMETIC)
    if arithmetic == "float32":  # torchvision: tensor.float().div(255), then sub_(mean).div_(std) in float32
        v = torch.arange(256, dtype=torch.float32).expand(3, 256).div(255.0)
        return ((v - torch.tensor(mean).view(3, 1)) / torch.tensor(std).view(3, 1)).contiguous().numpy()
    values = np.arange(256, dtype=np.float64)[None, :].repeat(3, 0)
    if arithmetic == "float64":  # numpy: img / 255. in float64, (x - mean) / std, then float32
        return (((values / 255.0) - np.asarray(mean)[:, None]) / np.asarray(std)[:, None]).astype(np.float32)
    import cv2  # mmcv.imnormalize on the 0-255 scale: float32 image, cv2.subtract(mean), cv2.multiply(1 / std)

    img = values.T[None].astype(np.float32).copy()  # [1, 256, 3]
    m = pixel_scale(mean).reshape(1, -1)
    stdinv = 1.0 / pixel_scale(std).reshape(1, -1)
    cv2.subtract(img, m, img)
    cv2.multiply(img, stdinv, img)
    return np.ascontiguousarray(img[0].T)


def pixel_scale(values: Tuple[float, ...]) -> np.ndarray:
    """0-1 scale constants back on the 0-255 scale the implementations write them in (123.68, 1.0): rounded to
    9 decimals, which gives the double of the written literal back (theirs have at most 3)."""
    return np.round(np.asarray(values, np.float64) * 255.0, 9)


def normalize_float(img: np.ndarray, mean: Tuple[float, ...], std: Tuple[float, ...]) -> torch.Tensor:
    """float32 [..., h, w, 3] on the 0-255 scale (the float-resized image) -> [..., 3, h, w] float32, as
    ``(img - mean) / std`` in float64 then ``.float()``: the official RESA's arithmetic."""
    out = ((img - pixel_scale(mean)) / pixel_scale(std)).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, -1, -3)))
