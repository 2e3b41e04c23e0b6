"""What the published detectors share: decoding through the implementation's own post-processing
(``decode_points``: per image, the lanes its test script writes, as original-frame points in its order, and
their scores), resampled on the frame's rows for the metrics; and its ``.lines.txt`` text (``lines_text``)."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from ...lanes.lines_writers import WRITERS

from ...decoders.base import points_to_laneset
from ..base import LaneModel


class PublishedLaneModel(LaneModel):
    # A family whose post-processing has a batched native decoder names it (``decoder_name``: decode runs it,
    # decode_reference and decode_points its Python reference) and decodes Monte-Carlo copies in one call;
    # the others decode through ``decode_points``, one copy at a time.
    supports_monte_carlo = False
    max_lanes = 4  # LaneSet capacity: the implementation's CULane lane limit (or what it decodes at most)
    # the implementation's .lines.txt writer (lanes.lines_writers.WRITERS) and its options
    lines_format: Tuple[str, Dict[str, str]] = ("pad", {})

    def decode_points(self, outputs, **kw):
        """Per image, (lanes as (N, 2) original-frame points in the writer's order, their scores)."""
        if self.decoder_name:
            return self.lane_decoder().points(outputs, **kw)
        raise NotImplementedError

    def decode(self, outputs, backend: str = "cpp", **kw):
        if self.decoder_name:
            return LaneModel.decode(self, outputs, backend=backend, **kw)
        images, scores = self.decode_points(outputs, **kw)
        return points_to_laneset(self.model_input, images, scores,
                                 max_lanes=max(self.max_lanes, kw.get("max_lanes", 0)), in_frame=True)

    def decode_reference(self, outputs, **kw):
        if self.decoder_name:
            return LaneModel.decode_reference(self, outputs, **kw)
        return self.decode(outputs, **kw)

    def lines_text(self, lanes: Sequence[np.ndarray]) -> str:
        """One image's ``.lines.txt`` text, as the implementation's test script writes ``lanes`` (one image of
        ``decode_points``)."""
        style, options = self.lines_format
        return WRITERS[style](lanes, **options)
