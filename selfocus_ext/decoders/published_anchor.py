"""The published anchor-based post-processings: CLRNet's (``clrnet``) and LaneATT's in pytorch-auto-drive's
and in the official layout (``laneatt-published``). Points come out in frame pixels.

Proposals above the score threshold go through the published line NMS; each kept lane's prior rows are cut
(``kept_rows``) and it is written as its points scaled to the frame (LaneATT, pytorch-auto-drive) or as the
cubic spline through them read on the written rows (CLRNet: every 8th row from 270; the official LaneATT:
every row). A lane whose start or length is not a finite number has no rows (the implementations stop with
an error there).

``reference`` is the implementations' post-processing in torch/numpy/scipy (tests/test_published_clrnet.py,
test_published_laneatt.py); ``native`` runs ``torch.ops.selfocus.decode_clrnet_published`` /
``decode_laneatt_published`` (csrc/core/decoders/published/anchor.h), batched, with an optional leading
Monte-Carlo dimension on either head. The spline is computed there in its own way (it is unique), equal to
scipy's to float64 rounding.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..ops.lanes import line_nms
from .anchor_rows import kept_rows, spline_points
from .base import Decoder, points_to_laneset

Points = Tuple[List[List[np.ndarray]], List[List[float]]]
LANES = 4
POINTS = 72
CLRNET_WRITTEN_YS = np.arange(270, 590, 8, dtype=np.float64)  # the rows CLRNet's test script writes


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


class _AnchorDecoder(Decoder):
    def _prior_ys(self) -> torch.Tensor:
        return torch.linspace(1, 0, steps=POINTS)

    def reference(self, outputs: Dict[str, torch.Tensor], threshold: float = 0.5, nms_threshold: float = 50.0,
                  top_k: int = 4, max_lanes: int = LANES):
        images, scores = self.points(outputs, threshold, nms_threshold, top_k)
        return points_to_laneset(self.model_input, images, scores, max_lanes=max_lanes, in_frame=True)


class CLRNetDecoder(_AnchorDecoder):
    name = "clrnet"

    def points(self, outputs, threshold: float = 0.4, nms_threshold: float = 50.0, top_k: int = 4) -> Points:
        """Per image, (lanes as the test script writes them: each prediction's cubic spline read every 8 rows
        from row 270, as (N, 2) frame points from the bottom up; their scores)."""
        cls = outputs["cls"].detach().float().cpu()
        lanes = outputs["lanes"].detach().float().cpu()
        scores = F.softmax(cls, dim=-1)[..., 1]
        W = self.model_input.size[0]
        frame = self.model_input.frame
        crop = self.model_input.crop_top
        ys = self._prior_ys().double().numpy()
        images, out_scores = [], []
        for b in range(cls.shape[0]):
            keep = scores[b] >= threshold
            pred = torch.cat([cls[b], lanes[b]], dim=-1)[keep]
            sc = scores[b][keep]
            kept_lanes, kept_scores = [], []
            if len(pred):
                nms_in = torch.cat([pred[:, :4], pred[:, 5:]], dim=-1)
                nms_in[:, 4] = nms_in[:, 4] * (POINTS - 1)
                nms_in[:, 5:] = nms_in[:, 5:] * (W - 1)
                for k in line_nms(nms_in, sc, nms_threshold, top_k, layout=(2, 4, 5)).tolist():
                    lane = pred[k].clone()
                    lane[5] = torch.round(lane[5] * (POINTS - 1))
                    if not _finite(lane[2].item(), lane[5].item()):
                        continue
                    xs = lane[6:].numpy().copy()
                    start = min(max(0, int(round(lane[2].item() * (POINTS - 1)))), POINTS - 1)
                    end = min(start + int(round(lane[5].item())) - 1, POINTS - 1)
                    valid = kept_rows(xs, start, end)
                    lx, ly = xs[valid][::-1].astype(np.float64), ys[valid][::-1]
                    if len(lx) <= 1:
                        continue
                    ly = (ly * (frame.height - crop) + crop) / frame.height
                    points = spline_points(lx, ly, CLRNET_WRITTEN_YS / frame.height, frame.width, frame.height)
                    if len(points) == 0:  # nothing inside the image on the written rows: not written
                        continue
                    kept_lanes.append(points)
                    kept_scores.append(float(sc[k]))
            images.append(kept_lanes)
            out_scores.append(kept_scores)
        return images, out_scores

    def reference(self, outputs, threshold: float = 0.4, nms_threshold: float = 50.0, top_k: int = 4,
                  max_lanes: int = LANES):
        return super().reference(outputs, threshold, nms_threshold, top_k, max_lanes)

    def native(self, outputs, threshold: float = 0.4, nms_threshold: float = 50.0, top_k: int = 4,
               max_lanes: int = LANES):
        mi = self.model_input
        xs, scores = torch.ops.selfocus.decode_clrnet_published(
            cls=outputs["cls"], lanes=outputs["lanes"], prior_ys=self._prior_ys(),
            sample_ys=torch.from_numpy(CLRNET_WRITTEN_YS / mi.frame.height), ys=torch.from_numpy(mi.frame.ys),
            input_width=int(mi.size[0]), frame_width=int(mi.frame.width), frame_height=int(mi.frame.height),
            crop_top=float(mi.crop_top), max_lanes=max_lanes, threshold=threshold, nms_threshold=nms_threshold,
            top_k=top_k)
        return self.laneset_from_tensors(xs, scores)


class PublishedLaneATTDecoder(_AnchorDecoder):
    """``anchors`` [A, 2 + 72] (start y, start x, xs in input pixels: the model's chosen anchors),
    ``length_adds_start_x`` (1 in pytorch-auto-drive's layout, 0 in the official one) and ``official`` (the
    official test script's NMS reading and splines) come from the model (``decoder_inputs``)."""

    name = "laneatt-published"

    def __init__(self, model_input, anchors: torch.Tensor, length_adds_start_x: float = 1.0, official: bool = False):
        super().__init__(model_input)
        self.anchors = anchors.detach().float().cpu()
        self.length_adds_start_x = float(length_adds_start_x)
        self.official = bool(official)

    def proposals(self, outputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        """[..., A, 2 + 72]: (start y, length, x offsets) in input pixels, as the implementations build them."""
        reg = outputs["reg"].detach().float().cpu()
        anchors = self.anchors
        length = reg[..., 0] + anchors[:, 1] * self.length_adds_start_x
        return torch.cat([anchors[:, 0].expand_as(length)[..., None], length[..., None], anchors[:, 2:] + reg[..., 1:]],
                         -1)

    def _suppress(self, regs: torch.Tensor, scores: torch.Tensor, threshold: float, top_k: int) -> torch.Tensor:
        """Indices of the proposals the implementation's line NMS keeps. The official kernel reads its own
        77-value layout (two class logits, start, start x, length, xs), whose length test differs from
        pytorch-auto-drive's, so each layout's proposals go through their own kernel's reading."""
        if not len(regs):
            return torch.zeros(0, dtype=torch.long)
        if not self.official:
            return line_nms(regs, scores, threshold, top_k)
        pad = regs.new_zeros(len(regs), 1)
        official = torch.cat([pad, pad, regs[:, :1], pad, regs[:, 1:2], regs[:, 2:]], 1)
        return line_nms(official, scores, threshold, top_k, layout=(2, 4, 5))

    def points(self, outputs, threshold: float = 0.5, nms_threshold: float = 50.0, top_k: int = 4) -> Points:
        """Per image, (lanes as (N, 2) frame points, their scores)."""
        props = self.proposals(outputs)
        scores = F.softmax(outputs["cls"].detach().float().cpu(), dim=-1)[..., 1]
        w = self.model_input.size[0]
        W, H = float(self.model_input.frame.width), float(self.model_input.frame.height)
        ys = self._prior_ys().numpy()
        images, out_scores = [], []
        for b in range(props.shape[0]):
            above = scores[b] > threshold
            regs, sc = props[b][above], scores[b][above]
            keep = self._suppress(regs, sc, nms_threshold, top_k)
            lanes, kept = [], []
            for k in keep.tolist():
                lane = regs[k].clone()
                lane[1] = torch.round(lane[1])
                if not _finite(lane[0].item(), lane[1].item()):
                    continue
                xs = (lane[2:] / w).numpy().copy()
                start = int(round(lane[0].item() * (POINTS - 1)))
                end = min(start + int(round(lane[1].item())) - 1, POINTS - 1)
                valid = kept_rows(xs, start, end)
                lx, ly = xs[valid][::-1], ys[valid][::-1]
                if len(lx) <= 1:
                    continue
                if self.official:
                    points = spline_points(lx.astype(np.float64), ly.astype(np.float64),
                                           np.arange(int(H), dtype=np.float64) / H, W, H)
                    if len(points) == 0:
                        continue
                else:
                    points = np.stack([lx * np.float32(W), ly * np.float32(H)], 1).astype(np.float64)
                lanes.append(points)
                kept.append(float(sc[k]))
            images.append(lanes)
            out_scores.append(kept)
        return images, out_scores

    def native(self, outputs, threshold: float = 0.5, nms_threshold: float = 50.0, top_k: int = 4,
               max_lanes: int = LANES):
        mi = self.model_input
        H = int(mi.frame.height)
        xs, scores = torch.ops.selfocus.decode_laneatt_published(
            cls=outputs["cls"], proposals=self.proposals(outputs), prior_ys=self._prior_ys(),
            sample_ys=torch.from_numpy(np.arange(H, dtype=np.float64) / float(H)), ys=torch.from_numpy(mi.frame.ys),
            input_width=int(mi.size[0]), frame_width=int(mi.frame.width), frame_height=H, max_lanes=max_lanes,
            threshold=threshold, nms_threshold=nms_threshold, top_k=top_k, official=self.official)
        return self.laneset_from_tensors(xs, scores)
