"""Quantizer modules on the fused ops: per-channel weights (round-to-nearest, AdaRound soft/hard) and
per-tensor activations (fixed or learnable step, QDrop)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..ops import act_quant, adaround_init, adaround_quant, adaround_quant_ste, fake_quant
from .observers import DEFAULT_ACT_OBSERVER, DEFAULT_WEIGHT_OBSERVER, Observer, check_bits, make_observer


class WeightQuantizer(nn.Module):
    """Signed per-output-channel weight fake quantization. ``mode``: "rtn" (round to nearest), "soft" /
    "hard" (AdaRound with the learnable ``v``), "ste" (hard rounding forward, the soft one's gradient back).
    ``harden()`` writes the hard-rounded weights back and returns to "rtn"."""

    def __init__(self, bits: int, observer: str = DEFAULT_WEIGHT_OBSERVER):
        super().__init__()
        self.bits = check_bits(bits)
        self.observer_name = observer
        self.register_buffer("scale", torch.empty(0))
        self.v: Optional[nn.Parameter] = None
        self.mode = "rtn"

    @property
    def calibrated(self) -> bool:
        return self.scale.numel() > 0

    def calibrate(self, weight: torch.Tensor) -> None:
        obs = make_observer(self.observer_name, self.bits, True, ch_axis=0)
        obs.observe(weight)
        self.scale = obs.scale().to(weight.device)

    def init_adaround(self, weight: torch.Tensor) -> None:
        self.v = nn.Parameter(adaround_init(weight.detach(), self.scale, self.bits))
        self.mode = "soft"

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.calibrated:
            raise RuntimeError("WeightQuantizer used before calibration")
        if self.mode == "rtn":
            return fake_quant(weight, self.scale, self.bits, True, 0)
        if self.mode == "ste":
            # forward: the hard rounding (the weights the model will deploy); backward: the soft rounding's
            # gradient to v
            return adaround_quant_ste(weight.detach(), self.v, self.scale, self.bits)
        return adaround_quant(weight.detach(), self.v, self.scale, self.bits, hard=self.mode == "hard")

    @torch.no_grad()
    def harden(self, weight: torch.Tensor) -> torch.Tensor:
        """Hard-rounded weights (to write back into the layer); the quantizer returns to round-to-nearest."""
        w = adaround_quant(weight, self.v, self.scale, self.bits, hard=True)
        self.v = None
        self.mode = "rtn"
        return w

    def extra_repr(self) -> str:
        return f"bits={self.bits}, mode={self.mode}, observer={self.observer_name}"


class ActQuantizer(nn.Module):
    """Per-tensor activation fake quantization with a step (fixed or learnable), QDrop's keep probability
    and an on/off switch. Calibration has two passes over the data: the first fixes signedness (unsigned
    when no negative value is seen), the second runs the observer batch by batch."""

    def __init__(self, bits: int, observer: str = DEFAULT_ACT_OBSERVER):
        super().__init__()
        self.bits = check_bits(bits)
        self.observer_name = observer
        self.register_buffer("step", torch.empty(0))
        self.register_buffer("signed_flag", torch.tensor(True))
        self.register_buffer("offset", None)  # LSQ+: an unsigned grid starting at a learned offset
        self.enabled = True
        self.phase = "quantize"  # or "sign", "observe" during calibration
        self.keep_prob = 1.0
        self.seed = 0
        self._observer: Optional[Observer] = None
        self._min_seen = float("inf")

    @property
    def signed(self) -> bool:
        return bool(self.signed_flag)

    @property
    def calibrated(self) -> bool:
        return self.step.numel() > 0

    def begin_sign_pass(self) -> None:
        self.phase, self._min_seen = "sign", float("inf")

    def begin_observe_pass(self) -> None:
        if self._min_seen == float("inf"):
            raise RuntimeError("ActQuantizer: no activations reached this layer in the sign pass")
        self.signed_flag = torch.tensor(self._min_seen < 0)
        self._observer = make_observer(self.observer_name, self.bits, self.signed)
        self.phase = "observe"

    def end_calibration(self) -> None:
        self.step = self._observer.scale().reshape(()).to(self.signed_flag.device)
        self._observer, self.phase = None, "quantize"

    def make_learnable(self) -> None:
        self.step = nn.Parameter(self.step.detach().clone())

    def make_offset_learnable(self) -> None:
        """LSQ+: the grid becomes unsigned, 2^bits levels from a learnable offset, with a learnable step. It
        starts where the calibrated grid is (offset -2^(bits-1) step for a signed grid, 0 for an unsigned
        one), so the model computes the same until training moves it."""
        if not self.calibrated:
            raise RuntimeError("ActQuantizer: calibrate before adding an offset")
        if not isinstance(self.step, nn.Parameter):
            self.make_learnable()
        start = -(2 ** (self.bits - 1)) * float(self.step.detach()) if self.signed else 0.0
        self.offset = nn.Parameter(torch.tensor(start, dtype=self.step.dtype, device=self.step.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.phase == "sign":
            if x.numel():
                self._min_seen = min(self._min_seen, float(x.detach().min()))
            return x
        if self.phase == "observe":
            self._observer.observe(x.detach())
            return x
        if not self.enabled:
            return x
        if not self.calibrated:
            raise RuntimeError("ActQuantizer used before calibration")
        n = x.numel()
        grad_scale = 1.0 / float((n * (2 ** self.bits - 1)) ** 0.5) if n else 1.0
        if self.offset is not None:
            # (x - offset) on the unsigned grid, shifted back: the offset's gradient is 1 outside the range
            # and 0 inside (LSQ+), the step's LSQ's
            return act_quant(x - self.offset, self.step, self.bits, False, self.keep_prob, self.seed,
                             grad_scale) + self.offset
        return act_quant(x, self.step, self.bits, self.signed, self.keep_prob, self.seed, grad_scale)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, enabled={self.enabled}, keep_prob={self.keep_prob}, observer={self.observer_name}"
