"""The segmentation decoder (SCNN, RESA): per-lane probability maps read row by row.

For each lane slot whose existence probability exceeds ``exist_threshold``, its softmax probability map is
upsampled to the input, blurred with a ``blur`` x ``blur`` box filter, and on every sample row the arg-max
column (the leftmost within 1e-5 of the maximum) above ``point_threshold`` is a lane point.

The reference upsamples with the float32 formula written out (``upsample_bilinear``: PyTorch's
``align_corners=False`` taps, horizontal then vertical, each product and sum rounded to float32) rather than
``F.interpolate``, whose rounding depends on the CPU's vector unit (fused multiply-adds on some, not on
others). With it and OpenCV's box filter, which the C++ decoder reproduces to the bit, both decoders see the
same numbers, so saturated maps (plateaus of near-equal probability) decode to the same columns.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch

from ..lanes.frames import ModelInput
from .base import Decoder

EXIST_THRESHOLD = 0.5
POINT_THRESHOLD = 0.3
BLUR = 9


def bilinear_taps(n_in: int, n_out: int):
    """Source indices and weights of PyTorch's bilinear resize (align_corners=False), in float32."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = src.astype(np.int64)
    w1 = src - i0.astype(np.float32)
    return i0, np.minimum(i0 + 1, n_in - 1), np.float32(1.0) - w1, w1


def upsample_bilinear(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """[..., h, w] float32 maps resized to [..., height, width]: w0*a + w1*b along x, then along y."""
    maps = np.asarray(maps, dtype=np.float32)
    x0, x1, u0, u1 = bilinear_taps(maps.shape[-1], width)
    rows = maps[..., x0] * u0 + maps[..., x1] * u1
    y0, y1, v0, v1 = bilinear_taps(maps.shape[-2], height)
    return rows[..., y0, :] * v0[:, None] + rows[..., y1, :] * v1[:, None]


def sample_rows(model_input: ModelInput) -> np.ndarray:
    """Input rows of the frame's rows that the model sees (the rows lane points are read on)."""
    H = model_input.size[1]
    ys = model_input.frame.ys
    _, rows = model_input.to_input(np.zeros_like(ys), ys)
    return np.round(rows[(rows >= 0) & (rows <= H - 1)]).astype(int)


class SegmentationDecoder(Decoder):
    name = "segmentation"

    def __init__(self, model_input):
        super().__init__(model_input)
        self.sample_rows = sample_rows(model_input)

    def native(self, outputs: Dict[str, torch.Tensor], exist_threshold: float = EXIST_THRESHOLD,
               point_threshold: float = POINT_THRESHOLD, blur: int = BLUR):
        xs, scores = torch.ops.selfocus.decode_scnn(
            out=outputs["out"], lane=outputs["lane"], sample_rows=torch.from_numpy(self.sample_rows.astype(np.int32)),
            **self.frame_args(input_size=True), exist_threshold=exist_threshold, point_threshold=point_threshold,
            blur=blur)
        return self.laneset_from_tensors(xs, scores)

    def reference(self, outputs: Dict[str, torch.Tensor], exist_threshold: float = EXIST_THRESHOLD,
                  point_threshold: float = POINT_THRESHOLD, blur: int = BLUR):
        import cv2  # the box filter the native op reproduces

        W, H = self.model_input.size
        prob = torch.softmax(outputs["out"].detach().float(), dim=1).cpu().numpy()
        prob = upsample_bilinear(prob, H, W)
        exist = torch.sigmoid(outputs["lane"].detach().float()).cpu().numpy()
        rows = self.sample_rows
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for b in range(prob.shape[0]):
            lanes, sc = [], []
            for s in range(exist.shape[1]):
                if exist[b, s] <= exist_threshold:
                    continue
                p = cv2.blur(prob[b, s + 1], (blur, blur))
                line = p[rows]
                best = line.max(1)
                # leftmost column within 1e-5 of the row maximum: plateaus are not decided by rounding
                cols = (line >= best[:, None] - 1e-5).argmax(1)
                ok = best > point_threshold
                if np.count_nonzero(ok) >= 2:
                    lanes.append(np.stack([cols[ok].astype(np.float32), rows[ok].astype(np.float32)], 1))
                    sc.append(float(exist[b, s]))
            images.append(lanes)
            scores.append(sc)
        return self.points_to_laneset(images, scores)
