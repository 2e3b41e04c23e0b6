"""Lane metrics: CULane (precision, recall, F1 per scenario, mF1) and TuSimple (accuracy, FP, FN, F1)."""

from . import culane, tusimple  # noqa: F401
