"""Deployable output: the quantized model as ONNX with QuantizeLinear/DequantizeLinear nodes, and running it
in onnxruntime.

    from selfocus_ext.export import export_onnx, open_session, OnnxLaneModel
    info = export_onnx(qmodel, "model.onnx", fmt="qdq")           # or fmt="qcdq"
    lanes = OnnxLaneModel(open_session("model.onnx"), float_model)  # scores with the project's evaluation

The graph is the network (BatchNorm folded); decoding stays in the project's C++ decoders. See
docs/export.md.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import torch
from torch import nn

from .frozen import ExportError, LayerQuant, freeze
from .onnx_graph import BIASES, FORMATS, check_formats, finish, require_onnx, trace
from .runtime import OnnxLaneModel, open_session, output_agreement, run_batches

__all__ = ["BIASES", "ExportError", "FORMATS", "LayerQuant", "OnnxLaneModel", "export_float_onnx", "export_onnx", "require_onnx",
           "freeze", "open_session", "output_agreement", "run_batches"]


def _save(proto, out: str) -> int:
    import onnx

    from ..files import atomic_write

    atomic_write(out, lambda tmp: onnx.save(proto, tmp))
    return os.path.getsize(out)


def _example(model: nn.Module, example: Optional[torch.Tensor]) -> torch.Tensor:
    if example is not None:
        return example
    mi = getattr(model, "model_input", None)
    if mi is None:
        raise ExportError("example: the model declares no model_input; pass an example input batch")
    return torch.zeros(2, 3, mi.size[1], mi.size[0])


def export_float_onnx(model: nn.Module, out: str, force: bool = False,
                      example: Optional[torch.Tensor] = None) -> Dict[str, object]:
    """The float model (no quantization) as ONNX: the baseline a quantized export is compared with."""
    require_onnx()
    if os.path.exists(out) and not force:
        raise ExportError(f"--out {out} exists; pass --force (force=True) to replace it")
    example = _example(model, example)
    model = model.eval()
    with torch.no_grad():
        outputs = model(example)
    proto = trace(model, example, list(outputs), "qdq")
    return dict(path=out, outputs=list(outputs), bytes=_save(proto, out))


def export_onnx(qmodel: nn.Module, out: str, fmt: str = "qdq", bias: str = "int32", force: bool = False,
                example: Optional[torch.Tensor] = None, metadata: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """Writes ``qmodel`` (a calibrated or tuned quantized model) to ``out`` as ONNX (opset 21).

    ``fmt``: "qdq" (int8 at 8 bits, int4/uint4 at 4 bits) or "qcdq" (8-bit containers, a Clip to the low-bit
    range between QuantizeLinear and DequantizeLinear). ``bias``: "int32" (on the accumulator grid, as integer
    runtimes use it) or "float". ``example``: one input batch for tracing (default: zeros of the model's
    input size). Refuses an existing ``out`` unless ``force``. Returns what was written."""
    if fmt not in FORMATS:
        raise ExportError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if bias not in BIASES:
        raise ExportError(f"bias: expected one of {', '.join(BIASES)}, got {bias!r}")
    if os.path.exists(out) and not force:
        raise ExportError(f"--out {out} exists; pass --force (force=True) to replace it")
    frozen, spec = freeze(qmodel, bias=bias)
    check_formats(spec, fmt)
    example = _example(qmodel, example)
    with torch.no_grad():
        outputs = frozen(example)
    if not isinstance(outputs, dict):
        raise ExportError(f"the model must return a dict of head tensors, got {type(outputs).__name__}")
    proto = trace(frozen, example, list(outputs), fmt)
    meta = {"producer": "selfocus_ext", "format": fmt, "bias": bias,
            **{k: str(v) for k, v in (getattr(qmodel, "quant_config", None) or {}).items()}, **(metadata or {})}
    info = finish(proto, fmt, bias, meta)
    info.update(path=out, outputs=list(outputs), layers=len(spec), format=fmt, bias=bias, bytes=_save(proto, out))
    return info
