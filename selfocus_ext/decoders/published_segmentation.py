"""The published segmentation post-processings: pytorch-auto-drive's SCNN and RESA (``pad-segmentation``) and
the official RESA's CULane evaluator (``resa-official``). Points come out in frame pixels.

Both resize the lane maps to the input (bilinear; corners aligned in pytorch-auto-drive, not in the official
RESA), softmax them over the channels, blur each kept lane's map with OpenCV's 9x9 box filter (replicated
borders) and read sample rows every ``gap`` frame pixels from the bottom. pytorch-auto-drive prunes the slots
to the lane limit by existence and places a point at floor(col / w * W) where the first arg-max column's
value exceeds the point threshold (column 0 is no point); the official RESA keeps every slot above the
existence threshold and places a point at round((arg-max + 1) * W / w - 1) where the row's maximum exceeds
it.

``reference`` is that in torch/OpenCV/numpy (equal to the implementations, tests/test_published_segmentation.py
and test_published_resa_official.py); ``native`` runs ``torch.ops.selfocus.decode_segmentation_published``
(csrc/core/decoders/published/segmentation.h: the same ATen resize and softmax, chunk by chunk, then
OpenCV's box filter to the bit), with an optional leading Monte-Carlo dimension on either head.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .base import Decoder, points_to_laneset
from .pruning import prune_lanes

Points = Tuple[List[List[np.ndarray]], List[List[float]]]
SLOTS = 4
EXIST_THRESHOLD, POINT_THRESHOLD, GAP, POINTS, BLUR = 0.5, 0.3, 20, 18, 9


class _PublishedSegmentationDecoder(Decoder):
    align_corners = True
    official = False

    def sample_rows(self, gap: int, points: int) -> Tuple[np.ndarray, np.ndarray]:
        """(input rows read, original-frame rows they stand for), in the implementation's order."""
        raise NotImplementedError

    def _maps(self, outputs):
        w, h = self.model_input.size
        prob = F.interpolate(outputs["out"].detach().float(), size=(h, w), mode="bilinear",
                             align_corners=self.align_corners)
        return prob.softmax(dim=1).cpu().numpy(), torch.sigmoid(outputs["lane"].detach().float()).cpu().numpy()

    def reference(self, outputs: Dict[str, torch.Tensor], exist_threshold: float = EXIST_THRESHOLD,
                  point_threshold: float = POINT_THRESHOLD, gap: int = GAP, points: int = POINTS,
                  max_lanes: int = SLOTS):
        images, scores = self.points(outputs, exist_threshold, point_threshold, gap, points, max_lanes)
        return points_to_laneset(self.model_input, images, scores, max_lanes=max_lanes, in_frame=True)

    def native(self, outputs: Dict[str, torch.Tensor], exist_threshold: float = EXIST_THRESHOLD,
               point_threshold: float = POINT_THRESHOLD, gap: int = GAP, points: int = POINTS,
               max_lanes: int = SLOTS):
        rows, frame_rows = self.sample_rows(gap, points)
        w, h = self.model_input.size
        xs, scores = torch.ops.selfocus.decode_segmentation_published(
            out=outputs["out"], lane=outputs["lane"], sample_rows=torch.from_numpy(rows.astype(np.int32)),
            frame_rows=torch.from_numpy(frame_rows.astype(np.float64)), ys=torch.from_numpy(self.model_input.frame.ys),
            frame_width=int(self.model_input.frame.width), input_width=int(w), input_height=int(h),
            max_lanes=max_lanes, exist_threshold=exist_threshold, point_threshold=point_threshold, blur=BLUR,
            align_corners=self.align_corners, official=self.official)
        return self.laneset_from_tensors(xs, scores)


class PadSegmentationDecoder(_PublishedSegmentationDecoder):
    name = "pad-segmentation"

    def sample_rows(self, gap: int, points: int) -> Tuple[np.ndarray, np.ndarray]:
        """``points`` rows every ``gap`` frame pixels from the bottom, as published (CULane: the bottom row is
        H - 1)."""
        mi = self.model_input
        h = mi.size[1]
        H = mi.frame.height - mi.crop_top
        rows = np.array([int(h - i * gap / H * h - 1) for i in range(points)], dtype=np.int64)
        frame_rows = np.array([H - i * gap - 1 + mi.crop_top for i in range(points)], np.float64)
        ok = rows >= 0
        return rows[ok], frame_rows[ok]

    def points(self, outputs, exist_threshold: float = EXIST_THRESHOLD, point_threshold: float = POINT_THRESHOLD,
               gap: int = GAP, points: int = POINTS, max_lanes: int = SLOTS) -> Points:
        """Per image, (lanes as (N, 2) frame points, their existence probabilities)."""
        import cv2

        w = self.model_input.size[0]
        W = self.model_input.frame.width
        prob, conf = self._maps(outputs)
        keep = prune_lanes(conf, exist_threshold, max_lanes)
        rows, frame_rows = self.sample_rows(gap, points)
        images, scores = [], []
        for b in range(prob.shape[0]):
            lanes, sc = [], []
            for s in range(prob.shape[1] - 1):
                if not keep[b, s]:
                    continue
                line = cv2.blur(prob[b, s + 1], (BLUR, BLUR), borderType=cv2.BORDER_REPLICATE)[rows]
                col = line.argmax(1)
                x = np.where(line[np.arange(len(rows)), col] > point_threshold, np.floor(col / w * W), 0.0)
                if np.count_nonzero(x > 0) < 2:
                    continue
                ok = x > 0
                lanes.append(np.stack([x[ok], frame_rows[ok]], 1))
                sc.append(float(conf[b, s]))
            images.append(lanes)
            scores.append(sc)
        return images, scores


class OfficialRESADecoder(_PublishedSegmentationDecoder):
    name = "resa-official"
    align_corners = False
    official = True

    def sample_rows(self, gap: int, points: int) -> Tuple[np.ndarray, np.ndarray]:
        """Input row round(h - i * gap / span * h) - 1 (negative: not read) for frame row
        round(H - i * gap - 1)."""
        mi = self.model_input
        h = mi.size[1]
        span = mi.frame.height - mi.crop_top
        rows = np.array([round(h - i * gap / span * h) - 1 for i in range(points)], dtype=np.int64)
        frame_rows = np.array([round(mi.frame.height - i * gap - 1) for i in range(points)], np.float64)
        return rows, frame_rows

    def points(self, outputs, exist_threshold: float = EXIST_THRESHOLD, point_threshold: float = POINT_THRESHOLD,
               gap: int = GAP, points: int = POINTS, max_lanes: int = SLOTS) -> Points:
        """Per image, (lanes as (N, 2) frame points, their existence probabilities). ``max_lanes`` is only the
        LaneSet's capacity: the official evaluator writes every slot above the threshold."""
        import cv2

        w = self.model_input.size[0]
        frame = self.model_input.frame
        prob, conf = self._maps(outputs)
        rows, frame_rows = self.sample_rows(gap, points)
        images, scores = [], []
        for b in range(prob.shape[0]):
            lanes, sc = [], []
            for s in range(prob.shape[1] - 1):
                if not conf[b, s] > exist_threshold:
                    continue
                blurred = cv2.blur(prob[b, s + 1], (BLUR, BLUR), borderType=cv2.BORDER_REPLICATE)
                pts = []
                for row, y in zip(rows, frame_rows):
                    if row < 0:
                        continue
                    line = blurred[row]
                    if np.max(line) > point_threshold:
                        value = np.float64(np.argmax(line) + 1)
                        pts.append((round(value * frame.width / w - 1), y))
                if len(pts) < 2:
                    continue
                lanes.append(np.array(pts, np.float64))
                sc.append(float(conf[b, s]))
            images.append(lanes)
            scores.append(sc)
        return images, scores
