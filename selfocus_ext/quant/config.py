"""The quantization setting, typed: parsed once where it enters (the command line, ``QuantConfig.parse``) and
passed down as it is.

Weights are quantized per output channel and activations per tensor, both symmetric with zero point 0 (the
project's convention, docs/quant.md); the granularity fields name that convention and refuse any other, so a
config that asks for what the kernels do not do fails where it is made."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Mapping, Optional, Tuple

from .observers import DEFAULT_ACT_OBSERVER, DEFAULT_WEIGHT_OBSERVER, OBSERVERS, check_bits

WEIGHT_GRANULARITIES = ("per_channel",)
# which BatchNorms fold into the layer before them: "adjacent" (declared right after it in a container), or
# "traced" (also those that read its output in a forward pass; what a runtime's graph optimiser folds)
FOLDS = ("adjacent", "traced")
ACT_GRANULARITIES = ("per_tensor",)


def parse_bits(bits: str) -> Tuple[int, int]:
    """"w4a4" -> (4, 4)."""
    m = re.fullmatch(r"w(\d+)a(\d+)", str(bits).lower())
    if not m:
        raise ValueError(f"bits must look like 'w4a4' (weights then activations), got {bits!r}")
    return check_bits(int(m.group(1))), check_bits(int(m.group(2)))


@dataclass(frozen=True)
class QuantConfig:
    """How a model is quantized.

    ``first_last_bits``: the bits (weights and activations) of the first layer and of the heads' output layers;
    8 by default, ``None`` quantizes them at ``weight_bits``/``act_bits`` like every other layer. ``skip``:
    names of layers left in float. Observers: docs/quant.md (``auto`` clips weights only above 4 bits).
    ``fold``: which BatchNorms are folded (``FOLDS``; files saved before it existed read as "adjacent").
    ``matmul_bits``: bits of both operands of every product of two activations (the models' ``MatMul``
    modules: attention, dynamic convolutions), per tensor; None leaves those products in float."""

    weight_bits: int = 4
    act_bits: int = 4
    first_last_bits: Optional[int] = 8
    weight_observer: str = DEFAULT_WEIGHT_OBSERVER
    act_observer: str = DEFAULT_ACT_OBSERVER
    weight_granularity: str = "per_channel"
    act_granularity: str = "per_tensor"
    skip: Tuple[str, ...] = field(default=())
    fold: str = "traced"
    matmul_bits: Optional[int] = None

    def __post_init__(self):
        for name in ("weight_bits", "act_bits"):
            try:
                check_bits(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"QuantConfig.{name}: {exc}") from None
        if self.first_last_bits is not None:
            try:
                check_bits(self.first_last_bits)
            except ValueError as exc:
                raise ValueError(f"QuantConfig.first_last_bits: {exc} (or None: at the model's bits)") from None
        for name in ("weight_observer", "act_observer"):
            if getattr(self, name) not in OBSERVERS:
                raise ValueError(f"QuantConfig.{name}: unknown observer {getattr(self, name)!r}; expected one of "
                                 f"{', '.join(sorted(OBSERVERS))}")
        if self.weight_granularity not in WEIGHT_GRANULARITIES:
            raise ValueError(f"QuantConfig.weight_granularity: expected one of {WEIGHT_GRANULARITIES}, got "
                             f"{self.weight_granularity!r}")
        if self.act_granularity not in ACT_GRANULARITIES:
            raise ValueError(f"QuantConfig.act_granularity: expected one of {ACT_GRANULARITIES}, got "
                             f"{self.act_granularity!r}")
        if isinstance(self.skip, str) or not all(isinstance(s, str) for s in self.skip):
            raise ValueError(f"QuantConfig.skip: expected a sequence of layer names, got {self.skip!r}")
        object.__setattr__(self, "skip", tuple(self.skip))
        if self.matmul_bits is not None:
            try:
                check_bits(self.matmul_bits)
            except ValueError as exc:
                raise ValueError(f"QuantConfig.matmul_bits: {exc} (or None: products stay float)") from None
        if self.fold not in FOLDS:
            raise ValueError(f"QuantConfig.fold: expected one of {FOLDS}, got {self.fold!r}")

    @classmethod
    def parse(cls, bits: str, **overrides: Any) -> "QuantConfig":
        """``QuantConfig.parse("w4a4", first_last_bits=None)``."""
        w, a = parse_bits(bits)
        return cls(weight_bits=w, act_bits=a, **overrides)

    @property
    def bits(self) -> str:
        """The setting's name, e.g. "w4a4"."""
        return f"w{self.weight_bits}a{self.act_bits}"

    def first_last(self) -> Tuple[int, int]:
        """(weight, activation) bits of the first layer and the heads' output layers."""
        if self.first_last_bits is None:
            return self.weight_bits, self.act_bits
        return self.first_last_bits, self.first_last_bits

    def with_observers(self, weight: Optional[str] = None, act: Optional[str] = None) -> "QuantConfig":
        return replace(self, weight_observer=weight or self.weight_observer, act_observer=act or self.act_observer)

    def to_dict(self) -> Dict[str, Any]:
        """The form saved beside a quantized model's state (and written into an ONNX file's metadata)."""
        d: Dict[str, Any] = dict(bits=self.bits, first_last_8bit=self.first_last_bits == 8, skip=list(self.skip),
                                 weight_observer=self.weight_observer, act_observer=self.act_observer,
                                 fold=self.fold)
        if self.first_last_bits not in (8, None):
            d["first_last_bits"] = self.first_last_bits
        if self.matmul_bits is not None:
            d["matmul_bits"] = self.matmul_bits
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "QuantConfig":
        """Reads :meth:`to_dict`'s form (unknown entries, such as the count of folded BatchNorms, are ignored)."""
        if "bits" not in d:
            raise ValueError(f"QuantConfig.from_dict: no 'bits' entry in {dict(d)!r}")
        first_last = d.get("first_last_bits", 8 if d.get("first_last_8bit", True) else None)
        return cls.parse(d["bits"], first_last_bits=first_last, skip=tuple(d.get("skip", ())),
                         weight_observer=d.get("weight_observer", DEFAULT_WEIGHT_OBSERVER),
                         act_observer=d.get("act_observer", DEFAULT_ACT_OBSERVER), fold=d.get("fold", "adjacent"),
                         matmul_bits=d.get("matmul_bits"))

    def cache_key(self) -> Tuple:
        """What identifies the calibrated model of this setting (part of the run cache's key)."""
        key: Tuple = (self.bits, self.weight_observer, self.act_observer, self.first_last_bits == 8)
        if self.first_last_bits not in (8, None):
            key += (self.first_last_bits,)
        return (key + ((self.skip,) if self.skip else ()) + ((self.fold,) if self.fold != "adjacent" else ())
                + ((f"matmul{self.matmul_bits}",) if self.matmul_bits is not None else ()))
