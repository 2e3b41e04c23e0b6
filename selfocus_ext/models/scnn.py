"""SCNN: segmentation lanes after SCNN (Pan et al. 2018).

A stride-8 feature map goes through SCNN's spatial message passing (slice by slice downward, upward,
rightward, leftward); heads: ``out`` [B, 5, h, w] per-lane segmentation logits (background + 4 lane slots,
semantic) and ``lane`` [B, 4] existence logits (confidence). Decoding: for each lane whose existence
probability exceeds 0.5, its probability map is upsampled to the input, blurred, and on every sample row the
arg-max column (the leftmost within 1e-5 of the maximum) above 0.3 is a lane point.

The reference upsamples with the float32 formula written out (``upsample_bilinear``: PyTorch's
``align_corners=False`` taps, horizontal then vertical, each product and sum rounded to float32) rather than
``F.interpolate``, whose rounding depends on the CPU's vector unit (fused multiply-adds on some, not on
others). With it and OpenCV's box filter, which the C++ decoder reproduces to the bit, both decoders see the
same numbers, so saturated maps (plateaus of near-equal probability) decode to the same columns.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import SMALL_DEPTHS, SMALL_WIDTHS, SmallResNet, TopDownNeck, conv_bn
from .base import HeadSpec, LaneModel
from .targets import slot_points

STRIDE = 8
SLOTS = 4


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


class MessagePassing(nn.Module):
    """SCNN's sequential convolutions across rows (1 x k kernels) and columns (k x 1 kernels)."""

    def __init__(self, channels: int, k: int = 9):
        super().__init__()
        self.down = nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), bias=False)
        self.up = nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2), bias=False)
        self.right = nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), bias=False)
        self.left = nn.Conv2d(channels, channels, (k, 1), padding=(k // 2, 0), bias=False)

    @staticmethod
    def _sweep(x: torch.Tensor, conv: nn.Conv2d, dim: int, reverse: bool) -> torch.Tensor:
        slices = list(x.split(1, dim=dim))
        order = range(len(slices) - 2, -1, -1) if reverse else range(1, len(slices))
        for i in order:
            prev = slices[i + 1] if reverse else slices[i - 1]
            slices[i] = slices[i] + F.relu(conv(prev))
        return torch.cat(slices, dim=dim)

    def forward(self, x):
        x = self._sweep(x, self.down, 2, False)
        x = self._sweep(x, self.up, 2, True)
        x = self._sweep(x, self.right, 3, False)
        return self._sweep(x, self.left, 3, True)


class SCNN(LaneModel):
    family = "segmentation"
    head_layers = ["seg.1", "exist.4"]
    heads = [
        HeadSpec("lane", "lane", "confidence", conf_fn="sigmoid"),
        HeadSpec("out", "out", "semantic", mask_from="lane"),
    ]

    def __init__(self, widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS, **kw):
        super().__init__(**kw)
        self.backbone = SmallResNet(widths, depths)
        c = self.backbone.out_channels
        self.neck = TopDownNeck(c["s8"], c["s16"], 64)
        self.reduce = conv_bn(64, 32, 1)
        self.mp = MessagePassing(32)
        self.seg = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(32, SLOTS + 1, 1))
        self.exist = nn.Sequential(nn.AdaptiveAvgPool2d((4, 8)), nn.Flatten(), nn.Linear((SLOTS + 1) * 32, 64),
                                   nn.ReLU(inplace=True), nn.Linear(64, SLOTS))

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.mp(self.reduce(self.neck(self.backbone(x))))
        out = self.seg(f)
        return {"out": out, "lane": self.exist(F.softmax(out, dim=1))}

    def confidence_mask(self, semantic: str, outputs):
        # existence [B, 4] -> [B, 5, 1, 1]; the background channel is kept at 1
        p = torch.sigmoid(outputs["lane"])
        return torch.cat([torch.ones_like(p[:, :1]), p], dim=1)[:, :, None, None]

    # ---- training -----------------------------------------------------------------------------------
    def targets(self, slots: np.ndarray) -> Dict[str, torch.Tensor]:
        
        W, H = self.model_input.size
        B = slots.shape[0]
        seg = np.zeros((B, H // STRIDE, W // STRIDE), np.int64)
        exist = np.zeros((B, SLOTS), np.float32)
        for b in range(B):
            canvas = np.zeros((H, W), np.uint8)
            for s, lane in enumerate(slot_points(slots[b], self.model_input)):
                if lane is None:
                    continue
                cv2.polylines(canvas, [np.round(lane).astype(np.int32)], False, s + 1, thickness=16)
                exist[b, s] = 1.0
            seg[b] = canvas[STRIDE // 2::STRIDE, STRIDE // 2::STRIDE]
        return {"seg": torch.from_numpy(seg), "exist": torch.from_numpy(exist)}

    def loss(self, out, t):
        w = torch.tensor([0.4] + [1.0] * SLOTS)
        ce = F.cross_entropy(out["out"], t["seg"], weight=w)
        return ce + 0.1 * F.binary_cross_entropy_with_logits(out["lane"], t["exist"])

    # ---- decoding -----------------------------------------------------------------------------------
    def sample_rows(self) -> np.ndarray:
        """Input rows of the frame's rows that the model sees (the rows lane points are read on)."""
        H = self.model_input.size[1]
        ys = self.model_input.frame.ys
        _, rows = self.model_input.to_input(np.zeros_like(ys), ys)
        return np.round(rows[(rows >= 0) & (rows <= H - 1)]).astype(int)

    def decode(self, outputs, exist_threshold: float = 0.5, point_threshold: float = 0.3, blur: int = 9,
               backend: str = "cpp"):
        """LaneSet of the outputs (batched C++ decoder; ``backend="python"`` runs the reference)."""
        if backend == "python":
            return self.decode_reference(outputs, exist_threshold, point_threshold, blur)
        mi = self.model_input
        sx, sy = mi.scale
        rows = torch.from_numpy(self.sample_rows().astype(np.int32))
        xs, scores = torch.ops.selfocus.decode_scnn(
            outputs["out"], outputs["lane"], rows, torch.from_numpy(mi.frame.ys), float(sx), float(sy),
            float(mi.crop_top), mi.frame.width, mi.size[0], mi.size[1], 8, exist_threshold, point_threshold, blur)
        return self.laneset_from_tensors(xs, scores)

    def decode_reference(self, outputs, exist_threshold: float = 0.5, point_threshold: float = 0.3, blur: int = 9):
        """Plain-Python decoding: the readable specification of the C++ decoder."""
        W, H = self.model_input.size
        prob = torch.softmax(outputs["out"].detach().float(), dim=1).cpu().numpy()
        prob = upsample_bilinear(prob, H, W)
        exist = torch.sigmoid(outputs["lane"].detach().float()).cpu().numpy()
        rows = self.sample_rows()
        images: List[List[np.ndarray]] = []
        scores: List[List[float]] = []
        for b in range(prob.shape[0]):
            lanes, sc = [], []
            for s in range(SLOTS):
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
