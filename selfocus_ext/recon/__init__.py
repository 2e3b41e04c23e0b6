"""Reconstruction: layer-, block- and network-wise tuning on the fused ops; Selective Focus (Semantic Guided
Focus + Sensitivity Aware Selection) and the baselines AdaRound, BRECQ and QDrop."""
from .config import BUDGETS, METHODS, Budget, Method, get_budget, get_method
from .curves import NoiseScoreCurve, build_curves, load_or_build_curves
from .engine import Reconstructor
from .losses import head_losses, selective_focus_loss, squared_error
from .qat import QuantizationAwareTraining
from .selection import head_error_levels, select_heads
from .state import Interrupted
from .units import find_units

__all__ = [
    "BUDGETS", "METHODS", "Budget", "Interrupted", "Method", "NoiseScoreCurve", "QuantizationAwareTraining",
    "Reconstructor", "build_curves",
    "find_units", "get_budget", "get_method", "head_error_levels", "head_losses", "load_or_build_curves",
    "select_heads", "selective_focus_loss", "squared_error",
]
