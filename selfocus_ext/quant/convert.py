"""Model conversion: BatchNorm folding, quantized layers in place of convolutions and linear layers,
calibration, saving and loading, integer export."""
from __future__ import annotations

import copy
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import nn
from tqdm import tqdm

from ..files import load_checked, save_checked
from ..layers.deform import ModulatedDeformConv2d
from .config import QuantConfig
from .modules import QUANT_TYPES, QuantLayer
from .observers import check_finite

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Folds every BatchNorm that directly follows a convolution inside a container into that convolution
    (running statistics, i.e. inference behaviour); the BatchNorm becomes Identity. Returns the count."""
    folded = 0
    for parent in model.modules():
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if not (isinstance(conv, (nn.Conv1d, nn.Conv2d, ModulatedDeformConv2d)) and isinstance(bn, _BN)):
                continue
            if bn.num_features != conv.out_channels or not bn.track_running_stats:
                continue
            inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(inv.reshape(-1, *([1] * (conv.weight.dim() - 1))))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = (bias - bn.running_mean) * inv + bn.bias
            conv.bias = nn.Parameter(new_bias)
            parent._modules[b] = nn.Identity()
            folded += 1
    return folded


def _quantizable(model: nn.Module) -> List[str]:
    return [n for n, m in model.named_modules() if type(m) in QUANT_TYPES]


def as_config(config: Union[QuantConfig, str], **overrides) -> QuantConfig:
    """A ``QuantConfig`` as it is, or one parsed from a bit setting such as "w4a4" with ``overrides`` (the
    keyword arguments of ``quantize_model`` kept for callers that name the setting as a string)."""
    if isinstance(config, QuantConfig):
        if overrides:
            raise TypeError(f"quantize_model: pass these settings inside the QuantConfig: {sorted(overrides)}")
        return config
    if not isinstance(config, str):
        raise TypeError(f"config: expected a QuantConfig or a bit setting such as 'w4a4', got {type(config).__name__}")
    first_last_8bit = overrides.pop("first_last_8bit", True)
    return QuantConfig.parse(config, first_last_bits=8 if first_last_8bit else None, **overrides)


def quantize_model(model: nn.Module, config: Union[QuantConfig, str] = "w4a4", **overrides) -> nn.Module:
    """A copy of ``model`` with BatchNorm folded and every Conv1d/Conv2d/Linear replaced by its quantized
    version (weights per output channel, input activations per tensor). The first layer and the heads'
    output layers (``model.head_layers`` when declared, else the last layer) take ``config.first_last_bits``
    (8 by default); layers named in ``config.skip`` stay in float. Other layer types with parameters are left
    in float and listed in a warning. Call ``calibrate`` before use.

    ``config`` may also be a bit setting such as "w4a4", with ``first_last_8bit``, ``skip``,
    ``weight_observer`` and ``act_observer`` as keywords."""
    config = as_config(config, **overrides)
    w_bits, a_bits = config.weight_bits, config.act_bits
    skip = config.skip
    qmodel = copy.deepcopy(model).eval()
    folded = fold_batchnorm(qmodel)
    names = _quantizable(qmodel)
    if not names:
        raise ValueError("quantize_model: the model has no Conv1d, Conv2d or Linear layer to quantize")
    heads = list(getattr(model, "head_layers", None) or [names[-1]])
    unknown = [h for h in list(heads) + list(skip) if h not in names]
    if unknown:
        raise ValueError(f"quantize_model: no quantizable layer named {unknown}; layers: {names}")
    edges = {names[0], *heads}
    for name in names:
        if name in skip:
            continue
        parent, attr = _parent(qmodel, name)
        layer = getattr(parent, attr)
        wb, ab = config.first_last() if name in edges else (w_bits, a_bits)
        setattr(parent, attr, QUANT_TYPES[type(layer)](layer, wb, ab, config.weight_observer, config.act_observer))
    left = sorted({type(m).__name__ for m in qmodel.modules()
                   if not isinstance(m, (QuantLayer, nn.Identity)) and not list(m.children())
                   and any(True for _ in m.parameters(recurse=False)) and type(m) not in QUANT_TYPES})
    if left:
        warnings.warn(f"quantize_model: layers of these types stay in float: {left}", stacklevel=2)
    qmodel.quant_config = dict(config.to_dict(), folded_bn=folded)
    return qmodel


def _parent(model: nn.Module, name: str):
    parts = name.split(".")
    parent = model
    for p in parts[:-1]:
        parent = getattr(parent, p)
    return parent, parts[-1]


def quant_layers(model: nn.Module) -> Dict[str, QuantLayer]:
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantLayer)}


def _batches(images: torch.Tensor, batch_size: int) -> Iterable[torch.Tensor]:
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]


@torch.no_grad()
def calibrate(qmodel: nn.Module, images: torch.Tensor, weight_observer: Optional[str] = None,
              act_observer: Optional[str] = None, batch_size: int = 32, progress: bool = False) -> nn.Module:
    """Sets every scale: weights from their observer, activation steps from two passes over ``images``
    with the float model (the first fixes signedness, the second runs the observer). Scales are then
    frozen. Deterministic for the same images."""
    if not isinstance(images, torch.Tensor) or images.numel() == 0 or len(images) == 0:
        raise ValueError("calibrate: the calibration set is empty")
    check_finite(images, "calibrate: calibration images")
    layers = quant_layers(qmodel)
    if not layers:
        raise ValueError("calibrate: no quantized layers (use quantize_model first)")
    qmodel.eval()
    for layer in layers.values():
        if weight_observer:
            layer.weight_quantizer.observer_name = weight_observer
        if act_observer:
            layer.input_quantizer.observer_name = act_observer
        layer.weight_quantizer.calibrate(layer.weight)
        layer.quantize_weight = False
    for phase in ("sign", "observe"):
        for layer in layers.values():
            q = layer.input_quantizer
            q.begin_sign_pass() if phase == "sign" else q.begin_observe_pass()
        for batch in tqdm(list(_batches(images, batch_size)), desc=f"calibration ({phase})", disable=not progress):
            qmodel(batch)
    for layer in layers.values():
        layer.input_quantizer.end_calibration()
        layer.quantize_weight = True
    return qmodel


def save_quantized(qmodel: nn.Module, path: str) -> None:
    """The quantized model's configuration and state (float weights, scales, steps, AdaRound state), written
    atomically with a checksum."""
    save_checked({"config": qmodel.quant_config, "state": qmodel.state_dict()}, path)


def load_quantized(float_model: nn.Module, path: str,
                   remedy: str = "make it again with python -m selfocus_ext.tune") -> nn.Module:
    """Rebuilds the quantized model around ``float_model`` (same architecture) and loads the saved state
    (verified against its checksum; no code is run from the file)."""
    saved = load_checked(path, remedy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = quantize_model(float_model, QuantConfig.from_dict(saved["config"]))
    state = saved["state"]
    for name, layer in quant_layers(qmodel).items():
        layer.weight_quantizer.scale = torch.empty_like(state[f"{name}.weight_quantizer.scale"])
        layer.input_quantizer.step = torch.empty_like(state[f"{name}.input_quantizer.step"])
        if f"{name}.input_quantizer.offset" in state:  # trained with LSQ+ offsets
            layer.input_quantizer.offset = torch.empty_like(state[f"{name}.input_quantizer.offset"])
    qmodel.load_state_dict(state)
    return qmodel.eval()


@torch.no_grad()
def export_int_weights(qmodel: nn.Module) -> Dict[str, Dict[str, torch.Tensor]]:
    """Integer weights for inspection: per layer the int8 levels, the per-channel scales and the bits."""
    from .observers import qmax

    out = {}
    for name, layer in quant_layers(qmodel).items():
        wq = layer.weight_quantizer
        s = wq.scale.reshape(-1, *([1] * (layer.weight.dim() - 1)))
        levels = torch.round(layer.qweight() / s).to(torch.int8)
        out[name] = {"weight": levels, "scale": wq.scale.clone(), "bits": torch.tensor(wq.bits)}
        assert int(levels.abs().max()) <= qmax(wq.bits, True) + 1
    return out
