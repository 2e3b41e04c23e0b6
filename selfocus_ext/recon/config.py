"""Method presets, iteration budgets and learning rates: every tuning constant lives here.

Learning rates (the one place they are chosen):

- AdaRound's rounding variables ``v`` get Adam at 1e-3 in every method but PD-Quant: the rate of the
  AdaRound, BRECQ and QDrop reference implementations (PD-Quant's code sets 3e-3, kept for it). The paper's 2.5e-5 cannot be meant for them: ``v`` starts at magnitudes of about 1-5 and
  Adam moves each entry by at most ``lr`` per step, so 5000 steps at 2.5e-5 could change a rounding only for
  weights already within 0.1 of the decision boundary.
- Activation step sizes get Adam with cosine annealing to 0: 4e-5 for the block- and layer-wise methods
  (QDrop's rate) and the paper's 2.5e-5 for the network-wise methods, where every step size of the network
  moves at once.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Optional

from ..quant.observers import DEFAULT_ACT_OBSERVER, DEFAULT_WEIGHT_OBSERVER

# What a result of the engine depends on, for files that record it: 3 = the layer- and block-wise methods
# take their FP inputs and targets from an FP copy of the calibrated model (before, from the model being
# tuned, whose finished units already held their rounded weights); 2 = the network-wise methods tune with
# the hard rounding in the forward pass (docs/recon.md, "Diagnosis"); 1 = with AdaRound's soft rounding.
ENGINE_VERSION = 3
# per granularity: the first engine version whose results hold today
CURRENT_SINCE = {"network": 2, "block": 3, "layer": 3, "qat": 1}

V_LR = 1e-3
STEP_LR_BLOCK = 4e-5
STEP_LR_NETWORK = 2.5e-5
QAT_LR_WEIGHTS = 1e-4  # LSQ+ fine-tuning of a trained model: weights (Adam, cosine to 0)
QAT_LR_QUANT = 1e-3  # and the activation steps and offsets (their gradients carry LSQ's scale)
ROUND_WEIGHT = 0.01  # lambda of the rounding regulariser
ROUND_WARMUP = 0.2  # share of iterations without the regulariser
BETA_START, BETA_END = 20.0, 2.0
SF_LAMBDA = 2.0  # confidence weight of Semantic Guided Focus (chosen by the sweep in docs/recon.md)
# PD-Quant (its public code's ResNet settings): temperature of the prediction KL, the prediction term's
# divisor lambda_r, the rounding variables' Adam rate (3e-3 in its code, where QDrop's keeps Adam's 1e-3),
# and the distribution correction: Adam rate, the divisor lambda_c of its closeness term, steps per batch
PDQ_TEMPERATURE = 4.0
PDQ_LAMBDA_R = 0.1
PDQ_V_LR = 3e-3
PDQ_DC_LR = 1e-3
PDQ_DC_LAMBDA = 0.02
PDQ_DC_ITERS = 500


@dataclass(frozen=True)
class Method:
    """``granularity``: None (calibration only), "layer", "block", "network" (reconstruction) or "qat"
    (quantization-aware training on labelled scenes). ``focus``: Semantic Guided Focus loss; ``select``:
    Sensitivity Aware Selection of the top-k heads."""

    name: str
    granularity: Optional[str]
    weight_observer: str = DEFAULT_WEIGHT_OBSERVER
    act_observer: str = DEFAULT_ACT_OBSERVER
    keep_prob: float = 1.0
    focus: bool = False
    select: bool = False
    description: str = ""
    hard_forward: bool = False  # AdaRound: hard rounding in the forward pass, the soft one's gradient back
    prediction_difference: bool = False  # PD-Quant: prediction-difference loss and distribution correction

    @property
    def step_lr(self) -> float:
        return STEP_LR_NETWORK if self.granularity == "network" else STEP_LR_BLOCK

    @property
    def v_lr(self) -> float:
        return PDQ_V_LR if self.prediction_difference else V_LR


METHODS: Dict[str, Method] = {m.name: m for m in [
    Method("aciq", None, "aciq", "aciq", description="ACIQ clipping (Laplace prior), no tuning"),
    Method("omse", None, "omse", "ema_mse", description="MSE-optimal clipping, no tuning"),
    Method("calib", None, description="the default calibration every tuning method starts from, no tuning"),
    Method("adaround", "layer", description="layer-wise AdaRound, activation quantization on (p = 1)"),
    Method("brecq", "block", description="block-wise AdaRound + learned steps, activation quantization on (p = 1)"),
    Method("qdrop", "block", keep_prob=0.5, description="block-wise, QDrop's random drop (p = 0.5)"),
    Method("pdquant", "block", keep_prob=0.5, prediction_difference=True,
           description="PD-Quant: QDrop's block-wise tuning + prediction-difference loss on the heads and "
           "distribution correction of the FP block inputs"),
    Method("sf", "network", keep_prob=0.5, focus=True, select=True, hard_forward=True,
           description="Selective Focus: network-wise, Semantic Guided Focus on the top-k heads"),
    Method("sf-nofocus", "network", keep_prob=0.5, select=True, hard_forward=True,
           description="Selective Focus without Focus: plain MSE on the selected heads"),
    Method("sf-noselect", "network", keep_prob=0.5, focus=True, hard_forward=True,
           description="Selective Focus without Selection: Semantic Guided Focus on all heads"),
    Method("network", "network", keep_prob=0.5, hard_forward=True,
           description="plain network-wise reconstruction (MSE on all heads)"),
    Method("lsq-qat", "qat", description="LSQ+ quantization-aware training: weights, activation steps and "
           "offsets trained with the model's own loss on labelled generated scenes"),
]}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}") from None


@dataclass(frozen=True)
class Budget:
    """Iterations per reconstruction unit (layer, block) or for the whole network, the batch size, the
    selection refresh interval (network-wise) and how often to checkpoint. ``fraction``: the share f of every
    method's paper budget this budget gives (None for the test-only ``ci`` budget)."""

    name: str
    layer_iters: int
    block_iters: int
    network_iters: int
    batch_size: int
    refresh: int
    checkpoint_every: int
    test_scenes: int
    curve_images: int = 100
    curve_levels: int = 8
    curve_reruns: int = 20
    fraction: Optional[float] = None
    qat_iters: int = 0
    heldout_images: int = 128  # calibration-like images the tune job keeps out of tuning to check its result

    def dc_iters(self) -> int:
        """PD-Quant's distribution-correction steps per batch: its 500, scaled like every iteration count by
        the budget's fraction (2 for the test-only budget)."""
        return max(1, round(PDQ_DC_ITERS * self.fraction)) if self.fraction is not None else 2

    def iters(self, granularity: str) -> int:
        return {"layer": self.layer_iters, "block": self.block_iters, "network": self.network_iters,
                "qat": self.qat_iters}[granularity]


# Each method's own paper budget: AdaRound 20000 iterations per layer, BRECQ and QDrop 20000 per block (the
# reference implementations), Selective Focus and the network-wise ablations 5000 for the whole network
# with the selection refreshed every 2000 (the paper); LSQ+ quantization-aware training 3000 steps, the
# length of the zoo's own training runs (2000-5000 steps of batch 16 from scratch). A budget of fraction f
# gives every method f of its own.
PAPER_ITERS = {"layer": 20000, "block": 20000, "network": 5000, "qat": 3000}
PAPER_REFRESH = 2000
QUICK_FRACTION = 0.12  # the tune command's default: Selective Focus's 600 iterations take about 4 minutes here


def fraction_budget(f: float, name: Optional[str] = None, batch_size: int = 32, checkpoint_every: int = 50,
                    test_scenes: int = 1000) -> Budget:
    """Every method gets the fraction ``f`` of its paper iterations (at least one)."""
    try:
        f = float(f)
    except (TypeError, ValueError):
        raise ValueError(f"budget fraction must be a number in (0, 1], got {f!r}") from None
    if not 0.0 < f <= 1.0:
        raise ValueError(f"budget fraction must be in (0, 1], got {f:g}")

    def share(n: int) -> int:
        return max(1, round(n * f))

    return Budget(name or f"f{f:g}", share(PAPER_ITERS["layer"]), share(PAPER_ITERS["block"]),
                  share(PAPER_ITERS["network"]), batch_size, share(PAPER_REFRESH), checkpoint_every, test_scenes,
                  fraction=f, qat_iters=share(PAPER_ITERS["qat"]))


BUDGETS: Dict[str, Budget] = {
    "paper": fraction_budget(1.0, "paper", batch_size=32, checkpoint_every=500, test_scenes=2000),
    "quick": fraction_budget(QUICK_FRACTION, "quick", batch_size=16, checkpoint_every=50, test_scenes=1000),
    "ci": Budget("ci", 4, 4, 8, 4, 4, 3, 48, curve_images=8, curve_levels=4, curve_reruns=3, qat_iters=6,
                 heldout_images=8),
}


def get_budget(name: str, **overrides) -> Budget:
    """A named budget (paper, quick, ci) or a fraction of the paper budgets: ``f0.05`` or ``0.05``."""
    if name in BUDGETS:
        b = BUDGETS[name]
    else:
        text = str(name)[1:] if str(name).startswith("f") else str(name)
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"unknown budget {name!r}; choose from {', '.join(BUDGETS)} or a fraction of the paper "
                             "budgets such as f0.05") from None
        b = fraction_budget(value)
    return replace(b, **{k: v for k, v in overrides.items() if v is not None})


def default_top_k(num_heads: int) -> int:
    """The paper's k: 1 for two-head models, 2 otherwise."""
    return 1 if num_heads <= 2 else 2
