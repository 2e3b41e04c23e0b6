"""pytorch-auto-drive's curve post-processings: LSTR (a cubic with projection per query) and BezierLaneNet
(cubic Bezier curves). Points come out in frame pixels.

``reference`` is the implementation's post-processing in numpy/torch (equal to it lane for lane and point for
point, tests/test_published_lstr.py and test_published_bezier.py); ``native`` runs
``torch.ops.selfocus.decode_lstr_published`` / ``decode_bezier_published`` (csrc/core/decoders/published/),
batched, with an optional leading Monte-Carlo dimension on either head.
"""
from __future__ import annotations

from math import comb
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decoder, points_to_laneset
from .pruning import prune_lanes

Points = Tuple[List[List[np.ndarray]], List[List[float]]]
LANES = 4


def cubic_with_projection(curves: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x at normalised rows ``y`` of LSTR's curve (k'', f'', m'', n'', b'', b''') [..., 6] -> [..., len(y)]."""
    c = [curves[..., i:i + 1] for i in range(6)]
    return c[0] / (y - c[1]) ** 2 + c[2] / (y - c[1]) + c[3] + c[4] * y - c[5]


class _FrameDecoder(Decoder):
    def _frame(self):
        return self.model_input.frame.width, self.model_input.frame.height

    def _laneset(self, pts: Points, max_lanes: int):
        images, scores = pts
        return points_to_laneset(self.model_input, images, scores, max_lanes=max_lanes, in_frame=True)



class PadLSTRDecoder(_FrameDecoder):
    name = "pad-lstr"

    def points(self, outputs, threshold: float = 0.95, max_lanes: int = LANES, gap: int = 20,
               points: int = 18) -> Points:
        """Per image, (lanes as (N, 2) frame points, their probabilities)."""
        conf = outputs["logits"].detach().float().softmax(dim=-1)[..., 1].cpu()
        curves = outputs["curves"].detach().float().cpu()
        keep = prune_lanes(conf.numpy(), threshold, max_lanes)
        W, H = self._frame()
        y = torch.tensor([1.0 - i * gap / H for i in range(points)], dtype=torch.float32)
        images, scores = [], []
        for b in range(curves.shape[0]):
            xs = cubic_with_projection(curves[b, :, 2:], y)
            lanes, sc = [], []
            for q in range(curves.shape[1]):
                if not keep[b, q]:
                    continue
                ok = (xs[q] >= 0) & (xs[q] <= 1) & (y < curves[b, q, 1]) & (y > curves[b, q, 0])
                if int(ok.sum()) < 2:
                    continue
                j = np.nonzero(ok.numpy())[0]
                lanes.append(np.stack([(xs[q] * W).numpy()[j].astype(np.float64), (H - j * gap).astype(np.float64)], 1))
                sc.append(float(conf[b, q]))
            images.append(lanes)
            scores.append(sc)
        return images, scores

    def reference(self, outputs, threshold: float = 0.95, max_lanes: int = LANES, gap: int = 20, points: int = 18):
        return self._laneset(self.points(outputs, threshold, max_lanes, gap, points), max_lanes)

    def native(self, outputs, threshold: float = 0.95, max_lanes: int = LANES, gap: int = 20, points: int = 18):
        W, H = self._frame()
        xs, scores = torch.ops.selfocus.decode_lstr_published(
            logits=outputs["logits"], curves=outputs["curves"], ys=torch.from_numpy(self.model_input.frame.ys),
            frame_width=int(W), frame_height=int(H), max_lanes=max_lanes, threshold=threshold, gap=gap, points=points)
        return self.laneset_from_tensors(xs, scores)


class PadBezierDecoder(_FrameDecoder):
    name = "pad-bezier"

    def points(self, outputs, threshold: float = 0.95, window: int = 9, max_lanes: int = LANES,
               samples: int = 50) -> Points:
        """Per image, (lanes as (N, 2) frame points, their probabilities)."""
        conf = torch.sigmoid(outputs["logits"].detach().float().cpu())
        keep = conf > threshold
        if window > 0:  # a local maximum of its window (the first index on ties)
            _, idx = F.max_pool1d(conf[:, None], window, stride=1, padding=(window - 1) // 2, return_indices=True)
            keep &= idx[:, 0] == torch.arange(conf.shape[1])
        keep = keep.numpy() & prune_lanes(np.where(keep.numpy(), conf.numpy(), 0.0), 0.0, max_lanes)
        t = np.linspace(0, 1, samples)
        bernstein = np.array([[ti ** k * (1 - ti) ** (3 - k) * comb(3, k) for k in range(4)] for ti in t])
        curves = outputs["curves"].detach().float().cpu().numpy()
        W, H = self._frame()
        images, scores = [], []
        for b in range(curves.shape[0]):
            lanes, sc = [], []
            for q in np.nonzero(keep[b])[0]:
                with np.errstate(invalid="ignore", over="ignore"):  # NaN / infinite control points
                    pts = bernstein.dot(np.array(curves[b, q].tolist()))
                lanes.append(np.stack([pts[:, 0] * W, pts[:, 1] * H], 1))
                sc.append(float(conf[b, q]))
            images.append(lanes)
            scores.append(sc)
        return images, scores

    def reference(self, outputs, threshold: float = 0.95, window: int = 9, max_lanes: int = LANES, samples: int = 50):
        return self._laneset(self.points(outputs, threshold, window, max_lanes, samples), max_lanes)

    def native(self, outputs, threshold: float = 0.95, window: int = 9, max_lanes: int = LANES, samples: int = 50):
        W, H = self._frame()
        xs, scores = torch.ops.selfocus.decode_bezier_published(
            logits=outputs["logits"], curves=outputs["curves"], ys=torch.from_numpy(self.model_input.frame.ys),
            frame_width=int(W), frame_height=int(H), max_lanes=max_lanes, threshold=threshold, window=window,
            samples=samples)
        return self.laneset_from_tensors(xs, scores)
