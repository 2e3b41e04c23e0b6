"""Training targets and losses for the published detectors whose training objective is simple enough to
rebuild from their papers and configurations: the row-anchor classifier (Ultra-Fast-Lane-Detection), the
segmentation detectors (SCNN, RESA) and the Bezier curve detector (BezierLaneNet). Labels come from generated
scenes (slot x values on the frame's rows).

- Row anchor: each (row anchor, lane) cell is a 201-way classification, the grid cell under the lane or
  "absent"; softmax focal loss with gamma 2 (the implementation's CULane objective without its auxiliary
  segmentation branch and with its structural terms at their CULane weight, 0). The grid cell is the one the
  implementation's decoder turns back into the lane's x (its cell expectation counts cells from 1).
- Segmentation: lanes drawn into a label map at the input's resolution with CULane's label width (16 frame
  pixels, scaled), class = lane slot + 1; cross-entropy with background weight 0.4 on the logits resized to
  the labels, plus 0.1 x binary cross-entropy on the existence logits.
- Bezier curves: each lane's cubic Bezier fit (chord-length least squares) in normalised input coordinates;
  the 50 column queries are matched to lanes one to one and trained with the zoo's set loss
  (``selfocus_ext.models.bezier.bezier_set_loss``: existence BCE plus L1 on sampled curve points). The
  implementation's auxiliary segmentation branch is a training-only extra left out (its checkpoint converter
  drops it anyway).
"""
from __future__ import annotations

from typing import Dict

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..targets import slot_points, x_at

FOCAL_GAMMA = 2.0
LABEL_WIDTH = 16  # frame pixels: CULane's segmentation labels
BACKGROUND_WEIGHT = 0.4
EXIST_WEIGHT = 0.1


def _check_slots(slots: np.ndarray, rows: int) -> np.ndarray:
    slots = np.asarray(slots, dtype=np.float32)
    if slots.ndim != 3 or slots.shape[2] != rows:
        raise ValueError(f"slots: expected [B, lanes, {rows}] frame x values, got shape {slots.shape}")
    return slots


class RowAnchorTraining:
    """Targets and loss of the row-anchor classifier (``loc`` [B, cells, rows, lanes], ``exist`` [B, rows,
    lanes] = logsumexp(cells) - absent logit)."""

    def __init__(self, model):
        from ...decoders.ufld import ROW_GAP
        from .ufld import GRID, LANES, ROWS

        mi = model.model_input
        self.frame, self.cells, self.rows, self.lanes = mi.frame, GRID, ROWS, LANES
        self.input_width = int(mi.size[0])
        # frame y of each output row: the decoder flips the rows, bottom row first, ROW_GAP frame pixels apart
        self.row_y = np.array([mi.frame.height - 1 - ROW_GAP * (ROWS - 1 - r) for r in range(ROWS)], np.float64)
        self.cell = (self.input_width - 1) / (GRID - 1)

    def targets(self, slots: np.ndarray) -> torch.Tensor:
        """[B, lanes, frame rows] slot x values -> [B, rows, lanes] class indices (``cells`` = absent)."""
        slots = _check_slots(slots, self.frame.rows)
        out = np.full((slots.shape[0], self.rows, self.lanes), self.cells, np.int64)
        scale = self.input_width / (self.frame.width * self.cell)
        for b in range(slots.shape[0]):
            for s in range(min(self.lanes, slots.shape[1])):
                xs = slots[b, s]
                keep = np.isfinite(xs)
                if np.count_nonzero(keep) < 2:
                    continue
                x = x_at(np.stack([xs[keep], self.frame.ys[keep]], 1), self.row_y)
                with np.errstate(invalid="ignore"):
                    k = np.round((x + 1.0) * scale) - 1.0
                ok = np.isfinite(k) & (k >= 0) & (k < self.cells)
                out[b, ok, s] = k[ok].astype(np.int64)
        return torch.from_numpy(out)

    def loss(self, outputs: Dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        loc, exist = outputs["loc"], outputs["exist"]
        logits = torch.cat([loc, (torch.logsumexp(loc, dim=1) - exist).unsqueeze(1)], dim=1)
        log_p = F.log_softmax(logits, dim=1)
        focal = (1.0 - log_p.exp()).pow(FOCAL_GAMMA) * log_p
        return F.nll_loss(focal, targets.to(focal.device))


class SegmentationTraining:
    """Targets and loss of the segmentation detectors (``out`` [B, lanes + 1, h, w] logits at any stride,
    ``lane`` [B, lanes] existence logits)."""

    def __init__(self, model):
        from .segmentation import SLOTS

        self.model_input, self.lanes = model.model_input, SLOTS
        w = self.model_input.size[0]
        self.width = max(1, int(round(LABEL_WIDTH * w / self.model_input.frame.width)))

    def targets(self, slots: np.ndarray) -> Dict[str, torch.Tensor]:
        mi = self.model_input
        slots = _check_slots(slots, mi.frame.rows)
        w, h = mi.size
        seg = np.zeros((slots.shape[0], h, w), np.int64)
        exist = np.zeros((slots.shape[0], self.lanes), np.float32)
        for b in range(slots.shape[0]):
            canvas = np.zeros((h, w), np.uint8)
            for s, lane in enumerate(slot_points(slots[b, :self.lanes], mi)):
                if lane is None:
                    continue
                cv2.polylines(canvas, [np.round(lane).astype(np.int32)], False, s + 1, thickness=self.width)
                exist[b, s] = 1.0
            seg[b] = canvas
        return {"seg": torch.from_numpy(seg), "exist": torch.from_numpy(exist)}

    def loss(self, outputs: Dict[str, torch.Tensor], targets: Dict[str, torch.Tensor]) -> torch.Tensor:
        out, seg = outputs["out"], targets["seg"]
        if out.shape[-2:] != seg.shape[-2:]:
            out = F.interpolate(out, size=seg.shape[-2:], mode="bilinear", align_corners=False)
        weight = torch.tensor([BACKGROUND_WEIGHT] + [1.0] * self.lanes, dtype=out.dtype, device=out.device)
        ce = F.cross_entropy(out, seg.to(out.device), weight=weight)
        return ce + EXIST_WEIGHT * F.binary_cross_entropy_with_logits(outputs["lane"], targets["exist"].to(out.device))


class BezierTraining:
    """Targets and loss of the Bezier curve detector (``logits`` [B, Q] existence, ``curves`` [B, Q, 4, 2]
    control points in normalised input coordinates)."""

    def __init__(self, model):
        self.model_input = model.model_input

    def targets(self, slots: np.ndarray) -> Dict[str, list]:
        from ..bezier import gt_bezier_curves

        return {"curves": gt_bezier_curves(_check_slots(slots, self.model_input.frame.rows), self.model_input)}

    def loss(self, outputs: Dict[str, torch.Tensor], targets: Dict[str, list]) -> torch.Tensor:
        from ..bezier import bezier_set_loss

        return bezier_set_loss(outputs["logits"], outputs["curves"], targets["curves"])


# keyed by the model's decoder, which fixes what its heads mean (two curve families decode differently)
TRAINING = {"ufld": RowAnchorTraining, "pad-segmentation": SegmentationTraining,
            "resa-official": SegmentationTraining, "pad-bezier": BezierTraining}
# the catalog's families (``PublishedModel.family``) that have one
CATALOG_FAMILIES = ("bezier", "resa", "scnn", "ufld")


def training_for(model):
    """The targets and loss of a published model; a clear error for models without them."""
    decoder = getattr(model, "decoder_name", None)
    if decoder not in TRAINING:
        raise ValueError(f"model: training is implemented for the published families {list(CATALOG_FAMILIES)}, "
                         f"not {type(model).__name__} (decoder {decoder!r})")
    return TRAINING[decoder](model)
