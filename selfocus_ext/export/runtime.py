"""Running an exported model in onnxruntime, as a lane model the project's evaluation can score.

Some onnxruntime versions fail to create a session at the full graph optimisation level for valid Q/DQ
graphs: W8A4 models (``INVALID_GRAPH`` for the fused ``QLinearConv`` it builds, even for its own quantizer's
output), and in 1.30 every ``qcdq`` model with a Clip between Q and DQ ("two nodes with same node name"
after its fusion). Such a model still loads at the basic level, which keeps the Q/DQ arithmetic and skips
those fusions: :func:`open_session` tries the full level first, falls back, and says which level it used
and why.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Union

import numpy as np
import torch
from torch import nn

from .frozen import ExportError


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("running an exported model needs onnxruntime: pip install -e .[export]") from None
    return onnxruntime


def open_session(model: Union[str, bytes], level: str = "all", threads: Optional[int] = None):
    """An onnxruntime CPU session; ``level`` "all" falls back to "basic" when the full optimisation rejects
    the graph. The session's ``optimization_level`` attribute says which level it runs at."""
    ort = _ort()
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    if level not in levels:
        raise ValueError(f"level: expected one of {', '.join(levels)}, got {level!r}")
    order = ["all", "basic"] if level == "all" else [level]
    first_error = None
    for name in order:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = levels[name]
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            if name == "all" and len(order) > 1:
                first_error = exc
                continue
            if first_error is not None:
                raise first_error
            raise
        sess.optimization_level = name
        sess.fallback_reason = (str(first_error).splitlines()[0][:300] if first_error is not None else None)
        return sess
    raise first_error


class OnnxLaneModel(nn.Module):
    """An onnxruntime session with a zoo model's heads, input and decoder: ``model(x)`` runs the session
    and returns the head tensors, ``decode`` is the float model's (the project's C++ decoders)."""

    def __init__(self, session, lane_model: nn.Module):
        super().__init__()
        self.session = session
        self.heads = lane_model.heads
        self.model_input = lane_model.model_input
        self._decoder = lane_model
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if x.device.type != "cpu":
            raise ValueError("OnnxLaneModel runs on the CPU; pass CPU tensors")
        outs = self.session.run(self.output_names, {self.input_name: x.detach().numpy().astype(np.float32)})
        return {k: torch.from_numpy(v) for k, v in zip(self.output_names, outs)}

    def decode(self, outputs, **kw):
        saved = self._decoder.model_input
        self._decoder.model_input = self.model_input
        try:
            return self._decoder.decode(outputs, **kw)
        finally:
            self._decoder.model_input = saved

    def to(self, *args, **kwargs):  # the session lives on the CPU
        return self


def output_agreement(reference: Dict[str, torch.Tensor], runtime: Dict[str, torch.Tensor]) -> Dict[str, dict]:
    """Per output: the largest difference and its 99th percentile in units of the output's 8-bit step
    (max |reference| / 127, as if the output itself were quantized per tensor to int8), and the share of
    values within one such step."""
    out = {}
    for k, ref in reference.items():
        got = runtime[k].to(ref.dtype)
        if got.shape != ref.shape:
            raise ValueError(f"output {k!r}: shape {tuple(got.shape)} from the runtime, {tuple(ref.shape)} expected")
        d = (got - ref).abs().flatten().double()
        step = float(ref.abs().max()) / 127 or 1.0
        out[k] = dict(step=step, max_abs=float(d.max()) if d.numel() else 0.0,
                      max_steps=float(d.max()) / step if d.numel() else 0.0,
                      p99_steps=float(torch.quantile(d, 0.99)) / step if d.numel() else 0.0,
                      within_one_step=float((d <= step).double().mean()) if d.numel() else 1.0)
    return out


def run_batches(model: nn.Module, images: torch.Tensor, batch_size: int = 16) -> Dict[str, torch.Tensor]:
    outs: List[Dict[str, torch.Tensor]] = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            outs.append({k: v.detach().cpu() for k, v in model(images[i:i + batch_size]).items()})
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
