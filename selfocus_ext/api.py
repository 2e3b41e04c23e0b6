"""The package's entry for other code: quantize a model, tune it with a reconstruction method, export it.

    qmodel = quantize_(model, QuantConfig.parse("w4a4"), calib_images)   # converted and calibrated copy
    tune_(qmodel, method="sf", budget="quick")                          # in place, on the same images
    export_onnx(qmodel, "model.onnx")

``model`` is any ``nn.Module`` returning a dict of head tensors that declares its ``heads`` (``HeadSpec``s)
and a ``decode`` for the lane-aware methods (Selective Focus needs both; AdaRound, BRECQ and QDrop need
neither: models.WrappedLaneModel wraps a network that lacks them). Nothing here reads the command line or
writes a run directory: that is ``python -m selfocus_ext.tune``."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Union

import torch
from torch import nn

from .export import export_onnx as _export
from .quant import QuantConfig, as_config, calibrate, quant_layers, quantize_model
from .recon import Budget, Method, NoiseScoreCurve, Reconstructor, build_curves, get_budget, get_method
from .recon.state import quantization_disabled

CalibData = Union[torch.Tensor, Iterable[torch.Tensor]]


@dataclass
class TuneResult:
    """What a reconstruction did: the model (tuned in place), its iterations, seconds per unit, the head
    selection history (Selective Focus) and the noise-score curves it selected with."""

    model: nn.Module
    method: str
    iterations: int
    unit_seconds: Dict[str, float]
    history: List[dict]
    curves: Optional[Dict[str, NoiseScoreCurve]]


def _images(calib_data: CalibData, what: str) -> torch.Tensor:
    """One [N, C, H, W] float tensor from a tensor or an iterable of batches (a DataLoader of images)."""
    if isinstance(calib_data, torch.Tensor):
        images = calib_data
    elif calib_data is None or isinstance(calib_data, (str, bytes)):
        raise TypeError(f"{what}: expected a [N, C, H, W] tensor of model inputs or an iterable of such batches, "
                        f"got {type(calib_data).__name__}")
    else:
        batches = [b[0] if isinstance(b, (list, tuple)) else b for b in calib_data]
        if not batches or not all(isinstance(b, torch.Tensor) for b in batches):
            raise TypeError(f"{what}: the iterable must yield tensors (or (images, ...) tuples), and at least one")
        images = torch.cat(batches)
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(f"{what}: expected a non-empty [N, C, H, W] batch of model inputs, got shape "
                         f"{tuple(images.shape)}")
    if not torch.is_floating_point(images):
        raise TypeError(f"{what}: expected floating-point model inputs, got {images.dtype}")
    return images


def quantize_(model: nn.Module, config: Union[QuantConfig, str], calib_data: CalibData, *, batch_size: int = 32,
              progress: bool = False) -> nn.Module:
    """A quantized copy of ``model`` (BatchNorm folded, Conv/Linear layers quantized as ``config`` says),
    calibrated on ``calib_data`` (model inputs). ``model`` is left as it is. The copy keeps the calibration
    images for ``tune_`` (``qmodel.calibration_images``, not part of its state)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    config = as_config(config)
    images = _images(calib_data, "calib_data")
    qmodel = quantize_model(model, config, example=images[:1])
    device = next(iter(model.parameters()), torch.empty(0)).device
    calibrate(qmodel.to(device), images.to(device), batch_size=batch_size, progress=progress)
    qmodel.calibration_images = images
    return qmodel


def _method(method: Union[str, Method]) -> Method:
    m = get_method(method) if isinstance(method, str) else method
    if not isinstance(m, Method):
        raise TypeError(f"method: expected a method name or a recon.Method, got {type(method).__name__}")
    if m.granularity is None:
        raise ValueError(f"method: {m.name!r} is a calibration method (quantize_ already calibrates); choose a "
                         "reconstruction method: adaround, brecq, qdrop, pdquant, sf, sf-nofocus, sf-noselect, network")
    if m.granularity == "qat":
        raise ValueError(f"method: {m.name!r} trains on labelled scenes; use recon.QuantizationAwareTraining")
    return m


def noise_score_curves(qmodel: nn.Module, images: torch.Tensor, budget: Budget, seed: int = 0,
                       progress: bool = False) -> Dict[str, NoiseScoreCurve]:
    """Sensitivity Aware Selection's curves from the model computing in float (folded BatchNorm: the float
    model's function), so no separate float copy is needed."""
    for attr in ("heads", "decode"):
        if not hasattr(qmodel, attr):
            raise ValueError(f"qmodel: Sensitivity Aware Selection needs the model's {attr!r} (declare heads and a "
                             "decoder, e.g. with models.WrappedLaneModel), or tune with a method without selection")
    n = min(budget.curve_images, len(images))
    with quantization_disabled(qmodel), torch.no_grad():
        return build_curves(qmodel, images[:n], budget.curve_levels, budget.curve_reruns, seed, progress)


def tune_(qmodel: nn.Module, method: Union[str, Method] = "sf", budget: Union[str, Budget] = "quick",
          calib_data: Optional[CalibData] = None, *, seed: int = 0, top_k: Optional[int] = None,
          lam: Optional[float] = None, checkpoint: Optional[str] = None, resume: bool = False,
          curves: Optional[Dict[str, NoiseScoreCurve]] = None, progress: bool = True,
          overrides: Optional[Dict[str, float]] = None, tuning_memory: Optional[int] = None) -> TuneResult:
    """Tunes ``qmodel`` (from ``quantize_``) in place with a reconstruction ``method`` (adaround, brecq,
    qdrop, pdquant, sf and its ablations) for ``budget`` (quick, paper, ci, or fN: the fraction N of each method's
    paper iterations) on ``calib_data`` (default: the images it was calibrated on). ``checkpoint``: a file
    written as tuning goes (and on Ctrl-C); ``resume=True`` continues from it to the same result.
    ``tuning_memory``: bytes of activations one backward pass may keep (network-wise methods; a batch that
    needs more runs as micro-batches whose gradients add up); None: no limit."""
    if not quant_layers(qmodel):
        raise ValueError("qmodel: no quantized layers; make it with quantize_(model, config, calib_data)")
    m = _method(method)
    b = get_budget(budget) if isinstance(budget, str) else budget
    if not isinstance(b, Budget):
        raise TypeError(f"budget: expected a budget name or a recon.Budget, got {type(budget).__name__}")
    if calib_data is None:
        calib_data = getattr(qmodel, "calibration_images", None)
        if calib_data is None:
            raise ValueError("calib_data: the model keeps no calibration images (not made by quantize_); pass them")
    images = _images(calib_data, "calib_data")
    device = next(iter(qmodel.parameters())).device
    images = images.to(device)
    if m.select and curves is None:
        curves = noise_score_curves(qmodel, images, b, seed, progress)
    kwargs = {} if lam is None else {"lam": lam}
    rec = Reconstructor(qmodel, m, b, images, seed=seed, checkpoint=checkpoint, curves=curves if m.select else None,
                        top_k=top_k, progress=progress, overrides=overrides, tuning_memory=tuning_memory, **kwargs)
    if resume:
        if not checkpoint:
            raise ValueError("resume: name the checkpoint file to continue from (checkpoint=...)")
        if os.path.isfile(checkpoint):
            rec.load_checkpoint(checkpoint)
    result = rec.run()
    return TuneResult(model=qmodel, method=m.name, iterations=int(result["iterations"]),
                      unit_seconds=dict(result["unit_seconds"]), history=list(result["history"]), curves=curves)


def export_onnx(qmodel: nn.Module, path: str, *, fmt: str = "qdq", example: Optional[torch.Tensor] = None,
                force: bool = False, **kwargs) -> Dict[str, object]:
    """Writes the quantized model as ONNX with QuantizeLinear/DequantizeLinear nodes (docs/export.md).
    ``example``: one input batch for tracing, needed when the model declares no ``model_input``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return _export(qmodel, path, fmt=fmt, example=example, force=force, **kwargs)
