"""Checkpoint converters: a published implementation's checkpoint file -> the state dict of the project's
builder of that architecture.

A layout says where the weights sit in the file (the top-level key: ``model``, ``net``, ``state_dict``),
which wrapper prefixes to strip (``module.`` from DataParallel), which keys to rename (regular expressions,
applied in order) and which entries the project's module does not have by design (e.g. a training-only
auxiliary branch). Files are read with ``weights_only=True``: a checkpoint cannot run code.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the architecture (one line, names the keys)."""


@dataclass(frozen=True)
class CheckpointLayout:
    """How one implementation stores its weights."""

    source: str
    top_keys: Tuple[str, ...] = ("model", "state_dict", "net")
    strip_prefixes: Tuple[str, ...] = ("module.",)
    renames: Tuple[Tuple[str, str], ...] = ()
    ignore: Tuple[str, ...] = ()
    # keys the file may lack because the project's module computes them (BN's num_batches_tracked; what the
    # implementation keeps outside its state dict, such as LaneATT's anchor choice)
    optional: Tuple[str, ...] = (r"(^|\.)num_batches_tracked$", r"^anchor_order$")
    # constants the implementation's conventions imply, added to the converted state (e.g. how a decoder
    # reads a head)
    inject: Tuple[Tuple[str, float], ...] = ()
    # a last step over the renamed state dict, for what a rename cannot say (e.g. splitting a fused tensor)
    transform: Optional[Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None
    # how this implementation's test transform differs from the entry's default input (``ModelInput`` fields:
    # reader, resize, arithmetic, mean, std), set on the model when a checkpoint of this layout loads
    input: Tuple[Tuple[str, object], ...] = ()
    # attributes of the model this implementation's test script sets differently (e.g. how it writes lines)
    settings: Tuple[Tuple[str, object], ...] = ()


def flip_first_conv(key: str):
    """A layout transform for implementations that read images as OpenCV does (BGR): the first convolution's
    input channels reversed, which computes the same function of the RGB image the project feeds."""
    def transform(state):
        out = dict(state)
        if key in out:
            out[key] = out[key].flip(1).contiguous()
        return out
    return transform


def _weights(obj, layout: CheckpointLayout, path: str) -> Dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in layout.top_keys:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (or a dict holding one under "
                              f"{' / '.join(repr(k) for k in layout.top_keys)}), got {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: holds no tensors")
    return tensors


def convert(state: Mapping[str, torch.Tensor], layout: CheckpointLayout) -> Dict[str, torch.Tensor]:
    """Keys of ``state`` in the layout's naming -> the project's naming (prefixes stripped, renamed,
    ignored entries dropped)."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in layout.strip_prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        for pattern, repl in layout.renames:
            key = re.sub(pattern, repl, key)
        if any(re.search(p, key) for p in layout.ignore):
            continue
        out[key] = value
    if layout.transform is not None:
        out = layout.transform(out)
    for key, value in layout.inject:
        out[key] = torch.tensor(float(value))
    return out


# A checkpoint trained at another input size than the implementation's (the architecture's input-dependent
# layers follow it, PublishedModel.build_at) says so under this key, as [width, height]; loading builds it there.
INPUT_SIZE_KEY = "input_size"


def in_layout(state: Mapping[str, torch.Tensor], layout: CheckpointLayout,
              input_size: Optional[Tuple[int, int]] = None) -> Dict[str, object]:
    """A state dict as an implementation's checkpoint file holds it: under the layout's top-level key, with its
    wrapper prefix, so that ``load_checkpoint`` reads it back. Keys stay in the project's names, which every
    converter passes through unchanged (checked). ``input_size``: recorded when the weights were trained at an
    input size other than the implementation's."""
    if layout.transform is not None:  # on the project's names a layout's transform is an involution (a channel
        state = layout.transform(dict(state))  # flip) or does not apply (the attention split): undo it once
    if set(convert(state, layout)) != set(state):
        raise ValueError(f"in_layout: the {layout.source} converter renames the project's keys")
    prefix = layout.strip_prefixes[0] if layout.strip_prefixes else ""
    out: Dict[str, object] = {layout.top_keys[0]: {prefix + k: v for k, v in state.items()}, "epoch": 1}
    if input_size is not None:
        out[INPUT_SIZE_KEY] = [int(v) for v in input_size]
    return out


def checkpoint_input_size(path: str) -> Optional[Tuple[int, int]]:
    """The input size a checkpoint records (``INPUT_SIZE_KEY``), or None (the implementation's own size)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint: no file {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a weights-only torch checkpoint ({first})") from None
    size = obj.get(INPUT_SIZE_KEY) if isinstance(obj, Mapping) else None
    if size is None:
        return None
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise CheckpointError(f"{path}: {INPUT_SIZE_KEY!r} must be [width, height] in pixels, got {size!r}")
    return int(size[0]), int(size[1])


def _sample(keys: Sequence[str], n: int = 4) -> str:
    keys = sorted(keys)
    more = f", ... (+{len(keys) - n})" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def fit(model: nn.Module, state: Mapping[str, torch.Tensor], name: str, layout: CheckpointLayout) -> Dict[str, torch.Tensor]:
    """Checks converted weights against ``model``'s state dict; raises one CheckpointError line naming the
    missing, unexpected and mis-shaped keys. Returns the weights to load (optional keys filled from the model)."""
    own = model.state_dict()
    source = layout.source
    missing = [k for k in own if k not in state and not any(re.search(p, k) for p in layout.optional)]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys ({_sample(missing)})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys ({_sample(unexpected)})")
        if shapes:
            parts.append(f"{len(shapes)} shapes differ ({_sample(shapes, 2)})")
        raise CheckpointError(f"checkpoint does not fit {name} (a {source} checkpoint of this family and size is "
                              f"expected): {'; '.join(parts)}")
    full = dict(own)
    full.update({k: v.to(own[k].dtype) for k, v in state.items()})
    return full


def load_checkpoint(model: nn.Module, path: str, layouts: Sequence[CheckpointLayout], name: str) -> nn.Module:
    """Reads ``path`` (weights only), converts it with the first of ``layouts`` it fits and loads it into
    ``model``; when none fits, the error is the one of the layout that came closest."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint: no file {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle with code, a truncated or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a weights-only torch checkpoint ({first})") from None
    if not layouts:
        raise ValueError("layouts: expected at least one checkpoint layout")
    errors = []
    for layout in layouts:
        try:
            state = convert(_weights(obj, layout, path), layout)
        except CheckpointError:
            raise
        except (IndexError, KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
            # a layout transform met a tensor it cannot reshape: the file is not this layout
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            errors.append((len(model.state_dict()), f"not a {layout.source} checkpoint of {name} ({first})"))
            continue
        damaged = next((k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()
                        and not bool(torch.isfinite(v).all())), None)
        if damaged is not None:
            raise CheckpointError(f"{path}: {damaged} holds non-finite values (NaN or inf); the checkpoint is damaged")
        try:
            model.load_state_dict(fit(model, state, name, layout))
            if layout.input:
                model.model_input = dataclasses.replace(model.model_input, **dict(layout.input))
            for attr, value in layout.settings:
                setattr(model, attr, value)
            return model
        except CheckpointError as exc:
            misfits = len(set(state) ^ set(model.state_dict()))
            errors.append((misfits, str(exc)))
    raise CheckpointError(f"{path}: {min(errors)[1]}")
