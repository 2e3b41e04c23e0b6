"""Decoders by name: each zoo family names the decoder its heads need (``LaneModel.decoder_name``)."""
from __future__ import annotations

from typing import Dict, List, Type

from .base import Decoder

_DECODERS: Dict[str, Type[Decoder]] = {}


def register_decoder(cls: Type[Decoder]) -> Type[Decoder]:
    """Adds a Decoder subclass under its ``name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Decoder)) or not cls.name:
        raise TypeError(f"register_decoder: expected a Decoder subclass with a name, got {cls!r}")
    if _DECODERS.get(cls.name, cls) is not cls:
        raise ValueError(f"register_decoder: a different decoder is already registered as {cls.name!r}")
    _DECODERS[cls.name] = cls
    return cls


def decoder_names() -> List[str]:
    return sorted(_DECODERS)


def build_decoder(name: str, model_input, **inputs) -> Decoder:
    """The decoder registered as ``name``, bound to ``model_input`` (``inputs``: what that family's decoder
    needs besides the geometry, such as LaneATT's anchors)."""
    if name not in _DECODERS:
        raise KeyError(f"no decoder named {name!r}; registered: {decoder_names()}")
    return _DECODERS[name](model_input, **inputs)
