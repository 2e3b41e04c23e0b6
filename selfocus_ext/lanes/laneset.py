"""LaneSet: a batch of lanes on fixed rows, the form lanes take between decoders, scores, metrics and files."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from .frames import Frame, get_frame


def resample_points(points, ys) -> np.ndarray:
    """x of a lane at each row of ``ys``, by linear interpolation of its points (N, 2) = (x, y).

    Rows outside the lane's y extent are NaN (no extrapolation). Points sharing a y are averaged.
    """
    ys = np.asarray(ys, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(pts)):
        raise ValueError("lane points must be finite")
    out = np.full(ys.shape, np.nan, dtype=np.float32)
    if len(pts) == 0:
        return out
    y_unique, inverse = np.unique(pts[:, 1], return_inverse=True)
    x_mean = np.bincount(inverse, weights=pts[:, 0]) / np.bincount(inverse)
    inside = (ys >= y_unique[0]) & (ys <= y_unique[-1])
    out[inside] = np.interp(ys[inside], y_unique, x_mean).astype(np.float32)
    return out


@dataclass
class LaneSet:
    """Lanes of B images on R shared rows.

    ys: float32 [R] row positions (original-frame pixels); xs: float32 [B, L, R], NaN where a lane has no
    point (a lane whose values are all NaN is absent); scores: float32 [B, L], NaN for absent lanes.
    """

    ys: torch.Tensor
    xs: torch.Tensor
    scores: torch.Tensor

    def __post_init__(self):
        self.ys = torch.as_tensor(self.ys, dtype=torch.float32)
        self.xs = torch.as_tensor(self.xs, dtype=torch.float32)
        self.scores = torch.as_tensor(self.scores, dtype=torch.float32)
        if self.ys.dim() != 1:
            raise ValueError(f"LaneSet: ys must have shape [R], got {tuple(self.ys.shape)}")
        if self.xs.dim() != 3 or self.xs.shape[2] != self.ys.shape[0]:
            raise ValueError(
                f"LaneSet: xs must have shape [B, L, R] with R = len(ys) = {self.ys.shape[0]}, got {tuple(self.xs.shape)}"
            )
        if tuple(self.scores.shape) != tuple(self.xs.shape[:2]):
            raise ValueError(f"LaneSet: scores must have shape [B, L] = {tuple(self.xs.shape[:2])}, got {tuple(self.scores.shape)}")
        if torch.isinf(self.xs).any():
            raise ValueError("LaneSet: xs has infinite values (use NaN for missing points)")
        if not torch.isfinite(self.ys).all():
            raise ValueError("LaneSet: ys must be finite")

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def empty(cls, images: int, lanes: int, ys) -> "LaneSet":
        ys = torch.as_tensor(np.asarray(ys, dtype=np.float32))
        return cls(ys, torch.full((images, lanes, ys.numel()), float("nan")), torch.full((images, lanes), float("nan")))

    @classmethod
    def from_points(
        cls,
        images: Sequence[Sequence],
        frame: Union[str, Frame, None] = None,
        ys=None,
        scores: Optional[Sequence[Sequence[float]]] = None,
        max_lanes: Optional[int] = None,
    ) -> "LaneSet":
        """From lists (one per image) of lanes given as (N, 2) point arrays (x, y), resampled onto the rows
        of ``frame`` (or explicit ``ys``). Lanes beyond ``max_lanes`` raise an error rather than vanish."""
        if (frame is None) == (ys is None):
            raise ValueError("LaneSet.from_points: give exactly one of frame or ys")
        ys = get_frame(frame).ys if frame is not None else np.asarray(ys, dtype=np.float32)
        counts = [len(lanes) for lanes in images]
        width = max(counts, default=0) if max_lanes is None else max_lanes
        if max_lanes is not None and counts and max(counts) > max_lanes:
            raise ValueError(f"LaneSet.from_points: an image has {max(counts)} lanes, more than max_lanes={max_lanes}")
        out = cls.empty(len(images), width, ys)
        for b, lanes in enumerate(images):
            for i, pts in enumerate(lanes):
                xs = resample_points(pts, ys)
                if np.isnan(xs).all():
                    continue
                out.xs[b, i] = torch.from_numpy(xs)
                out.scores[b, i] = 1.0 if scores is None else float(scores[b][i])
        return out

    # ------------------------------------------------------------------------------------------------
    @property
    def images(self) -> int:
        return int(self.xs.shape[0])

    @property
    def max_lanes(self) -> int:
        return int(self.xs.shape[1])

    def present(self) -> torch.Tensor:
        """[B, L] bool: lanes with at least one point."""
        return ~torch.isnan(self.xs).all(dim=2)

    def lane_counts(self) -> torch.Tensor:
        return self.present().sum(dim=1)

    def to(self, device) -> "LaneSet":
        return LaneSet(self.ys.to(device), self.xs.to(device), self.scores.to(device))

    def __len__(self) -> int:
        return self.images

    def __getitem__(self, index) -> "LaneSet":
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return LaneSet(self.ys, self.xs[index], self.scores[index])

    def to_points(self) -> List[List[np.ndarray]]:
        """Per image, the present lanes as (N, 2) float32 arrays of (x, y), in row order."""
        ys = self.ys.cpu().numpy()
        xs = self.xs.detach().cpu().numpy()
        out = []
        for b in range(xs.shape[0]):
            lanes = []
            for lane in xs[b]:
                keep = ~np.isnan(lane)
                if keep.any():
                    lanes.append(np.stack([lane[keep], ys[keep]], axis=1).astype(np.float32))
            out.append(lanes)
        return out
