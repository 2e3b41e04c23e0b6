"""pytorch-auto-drive's lane pruning, shared by its published post-processings (segmentation, LSTR,
BezierLaneNet) and by the native decoders' prune.h."""
from __future__ import annotations

import numpy as np


def prune_lanes(conf: np.ndarray, threshold: float, max_lanes: int) -> np.ndarray:
    """Slots kept per image ([B, Q] -> bool [B, Q]): probability above ``threshold``, at most ``max_lanes``
    (the least confident dropped first, all of a tied minimum at once, as published). The minimum skips NaN
    confidences, which are never kept (the published loop would not end on them); otherwise as published."""
    keep = conf > threshold
    work = conf.astype(np.float64).copy()
    for b in range(conf.shape[0]):
        while keep[b].sum() > max_lanes:
            drop = work[b] == np.nanmin(work[b])
            keep[b][drop] = False
            work[b][drop] = 1.1
    return keep
