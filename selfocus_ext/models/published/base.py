"""What the published detectors share: decoding through the implementation's own post-processing
(``decode_points``: per image, lanes as original-frame points and their scores), resampled on the frame's
rows; and the anchor-based detectors' rule for which prior rows of a lane are kept."""
from __future__ import annotations

import numpy as np

from ...decoders.base import points_to_laneset
from ..base import LaneModel


class PublishedLaneModel(LaneModel):
    # the published post-processing decodes one Monte-Carlo copy at a time
    supports_monte_carlo = False
    max_lanes = 4  # LaneSet capacity: the implementations' CULane lane limit

    def decode_points(self, outputs, **kw):
        raise NotImplementedError

    def decode(self, outputs, **kw):
        images, scores = self.decode_points(outputs, **kw)
        return points_to_laneset(self.model_input, images, scores,
                                 max_lanes=max(self.max_lanes, kw.get("max_lanes", 0)), in_frame=True)

    def decode_reference(self, outputs, **kw):
        return self.decode(outputs, **kw)


def kept_rows(xs: np.ndarray, start: int, end: int) -> np.ndarray:
    """LaneATT's and CLRNet's rows of one lane (``xs`` normalised, bottom row first; changed in place): rows
    after ``end`` are dropped, and rows below ``start`` are kept only while the lane stays inside the image
    going down from it. Returns the mask of kept rows."""
    inside = ((xs[:start] >= 0.0) & (xs[:start] <= 1.0))[::-1].cumprod()[::-1].astype(bool)
    xs[end + 1:] = -2  # python slicing, negative ends included, as published
    head = xs[:start]
    head[~inside] = -2
    return xs >= 0
