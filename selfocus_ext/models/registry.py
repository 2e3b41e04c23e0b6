"""The model zoo: names -> builders, and the shipped trained weights."""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Tuple

import torch

from .base import LaneModel
from .published.checkpoint import CheckpointLayout

OWN_LAYOUT = CheckpointLayout("selfocus_ext", top_keys=("model",))

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
_BUILDERS: Dict[str, Callable[[], LaneModel]] = {}
_OWN_WEIGHTS = set()


def register(name: str, own_weights: bool = False):
    """Registers a builder under ``name``. ``own_weights``: the builder returns a trained model itself (a
    user's model), so ``load`` does not look for shipped weights."""

    def wrap(builder):
        _BUILDERS[name] = builder
        if own_weights:
            _OWN_WEIGHTS.add(name)
        return builder

    return wrap


def available() -> List[str]:
    return sorted(_BUILDERS)


def published_names() -> List[str]:
    """The registered published architectures (``published.catalog()``)."""
    from .published import catalog

    return [e.name for e in catalog() if e.name in _BUILDERS]


def sizes() -> Dict[str, List[str]]:
    """Each zoo family's registered sizes: ``{"ganet": ["m", "s"], ...}`` from names of the form FAMILY-SIZE
    (the published architectures have their own catalog, ``published.catalog()``)."""
    out: Dict[str, List[str]] = {}
    published = set(published_names())
    for name in available():
        if name in published:
            continue
        family, _, size = name.rpartition("-")
        if family:
            out.setdefault(family, []).append(size)
    return out


def weights_path(name: str) -> str:
    return os.path.join(WEIGHTS_DIR, f"{name}.pt")


def build(name: str) -> LaneModel:
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {available()}") from None


def load(name: str, pretrained: bool = True, checkpoint: Optional[str] = None,
         anchors: Optional[str] = None, input_size: Optional[Tuple[int, int]] = None) -> LaneModel:
    """A zoo model by name, in eval mode, with its shipped weights unless ``pretrained=False``.

    ``checkpoint``: a weights file to load instead: for a published model (``published.catalog()``) a
    checkpoint of the implementation it comes from, converted on loading; for a zoo model a file saved by
    this package. Published models ship no weights: without a checkpoint they need ``pretrained=False``.
    ``anchors``: LaneATT's anchor frequency file (the implementations' data/culane_anchors_freq.pt), needed
    with its checkpoint.
    ``input_size``: a published architecture at another (width, height) than the implementation's; a checkpoint
    that records the size it was trained at (``published.checkpoint.INPUT_SIZE_KEY``) is built at that size.
    """
    from .published import load_checkpoint, published
    from .published.checkpoint import checkpoint_input_size

    if name in published_names():
        entry = published(name)
        if input_size is None and checkpoint is not None:
            input_size = checkpoint_input_size(checkpoint)
        at_own = input_size is None or tuple(input_size) == tuple(entry.input_size)
        model = build(name) if at_own else entry.build_at(input_size)
        if anchors is not None and "anchors" not in entry.extras:
            raise ValueError(f"anchors: {name} takes no anchor file (only LaneATT does)")
        if checkpoint is not None:
            load_checkpoint(model, checkpoint, entry.layouts, name)
            if "anchors" in entry.extras:
                from .published.laneatt import attach_anchors

                attach_anchors(model, anchors)
        elif pretrained:
            raise FileNotFoundError(f"{name} is a published architecture and ships no weights: pass "
                                    f"checkpoint=FILE (a {published(name).source} checkpoint) or pretrained=False")
        return model.eval()
    if input_size is not None:
        raise ValueError(f"input_size: {name} is a zoo model with one input size; only published models take another")
    model = build(name)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, (OWN_LAYOUT,), name)
        return model.eval()
    if pretrained and name not in _OWN_WEIGHTS:
        path = weights_path(name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no trained weights for {name!r} at {path}; train them with `python python/train_zoo.py --model {name}` "
                "or use pretrained=False"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"] if "model" in state else state)
    return model.eval()
