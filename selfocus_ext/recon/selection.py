"""Sensitivity Aware Selection: rank heads by the Lane Distortion Score their current error would cause."""
from __future__ import annotations

from typing import Dict, List

import torch

from .curves import NoiseScoreCurve


def head_error_levels(model, q_out: Dict[str, torch.Tensor], fp_out: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """RMS of the quantized model's error on each head's raw output (the curves' unit)."""
    return {h.name: float((q_out[h.output_key] - fp_out[h.output_key]).double().pow(2).mean().sqrt())
            for h in model.heads}


def select_heads(curves: Dict[str, NoiseScoreCurve], levels: Dict[str, float], k: int) -> List[str]:
    """The ``k`` heads with the highest predicted score (ties: the declared order)."""
    if k < 1:
        raise ValueError(f"select_heads: k must be >= 1, got {k}")
    missing = [h for h in levels if h not in curves]
    if missing:
        raise ValueError(f"select_heads: no noise-score curve for heads {missing}")
    predicted = {h: float(curves[h](lvl)) for h, lvl in levels.items()}
    order = sorted(range(len(levels)), key=lambda i: -predicted[list(levels)[i]])
    return [list(levels)[i] for i in order[:k]]
