"""Preparing quantized layers for tuning, finishing them, and checkpoints that survive interruption."""
from __future__ import annotations

import contextlib
import signal
from typing import Dict, Iterable, Iterator

import torch
from torch import nn

from ..quant.convert import matmul_quantizers, quant_layers
from ..quant.modules import QuantLayer


def prepare_layers(layers: Iterable[QuantLayer], keep_prob: float, learn_steps: bool = True) -> None:
    """AdaRound soft rounding from the current weights; learnable activation steps; QDrop's keep probability."""
    for layer in layers:
        layer.weight_quantizer.init_adaround(layer.weight)
        q = layer.input_quantizer
        if learn_steps and q.enabled and not isinstance(q.step, nn.Parameter):
            q.make_learnable()
        q.keep_prob = keep_prob


@torch.no_grad()
def finish_layers(layers: Iterable[QuantLayer]) -> None:
    """Hard rounding written back into the weights, steps frozen, activation quantization always on."""
    for layer in layers:
        wq = layer.weight_quantizer
        if wq.v is not None:
            layer.weight.copy_(wq.harden(layer.weight))
        q = layer.input_quantizer
        for name in ("step", "offset"):
            if isinstance(getattr(q, name), nn.Parameter):
                value = getattr(q, name).detach().clone()
                del q._parameters[name]
                q.register_buffer(name, value)
        q.keep_prob = 1.0


def structure(qmodel: nn.Module) -> Dict[str, Dict[str, bool]]:
    """Which layers are mid-tuning (AdaRound ``v`` present, learnable step): what a checkpoint must rebuild."""
    return {n: {"v": l.weight_quantizer.v is not None, "learn": isinstance(l.input_quantizer.step, nn.Parameter),
                "offset": isinstance(l.input_quantizer.offset, nn.Parameter), "keep_prob": l.input_quantizer.keep_prob}
            for n, l in quant_layers(qmodel).items()}


def restore(qmodel: nn.Module, struct: Dict[str, Dict[str, bool]], state: Dict[str, torch.Tensor]) -> None:
    layers = quant_layers(qmodel)
    for name, s in struct.items():
        layer = layers[name]
        if s["v"]:
            layer.weight_quantizer.v = nn.Parameter(torch.empty_like(state[f"{name}.weight_quantizer.v"]))
            layer.weight_quantizer.mode = "soft"
        if s["learn"] and not isinstance(layer.input_quantizer.step, nn.Parameter):
            layer.input_quantizer.make_learnable()
        if s.get("offset") and not isinstance(layer.input_quantizer.offset, nn.Parameter):
            layer.input_quantizer.make_offset_learnable()
        layer.input_quantizer.keep_prob = s["keep_prob"]
    qmodel.load_state_dict(state)


@contextlib.contextmanager
def quantization_disabled(*modules: nn.Module) -> Iterator[None]:
    """The quantized model (or the given parts of it) computing in float (folded BatchNorm, float weights and
    activations)."""
    layers = list({id(l): l for m in modules for l in quant_layers(m).values()}.values())
    products = list({id(q): q for m in modules for q in matmul_quantizers(m)}.values())
    saved = [(l.quantize_weight, l.input_quantizer.enabled) for l in layers]
    saved_products = [q.enabled for q in products]
    for l in layers:
        l.quantize_weight, l.input_quantizer.enabled = False, False
    for q in products:
        q.enabled = False
    try:
        yield
    finally:
        for l, (w, a) in zip(layers, saved):
            l.quantize_weight, l.input_quantizer.enabled = w, a
        for q, e in zip(products, saved_products):
            q.enabled = e


@contextlib.contextmanager
def keep_prob_one(qmodel: nn.Module) -> Iterator[None]:
    """Deployment behaviour (no QDrop drop) for a measurement in the middle of tuning."""
    layers = list(quant_layers(qmodel).values())
    saved = [l.input_quantizer.keep_prob for l in layers]
    for l in layers:
        l.input_quantizer.keep_prob = 1.0
    try:
        yield
    finally:
        for l, p in zip(layers, saved):
            l.input_quantizer.keep_prob = p


class DeferredInterrupt:
    """Turns the first Ctrl-C / SIGTERM into a flag checked between iterations, so a checkpoint is written
    from a consistent state; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._saved = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, h in self._saved.items():
            signal.signal(sig, h)
        return False


class Interrupted(Exception):
    """Tuning stopped on request after writing its checkpoint."""
