"""The exported model against the PyTorch quantized model: raw outputs and decoded F1."""
from __future__ import annotations

from typing import Dict

import torch

from .frozen import freeze
from .runtime import OnnxLaneModel, open_session, output_agreement, run_batches


def runtime_f1(qmodel, float_model, onnx_path: str, scenes: int, threads=None) -> Dict[str, object]:
    """F1 of the onnxruntime model, of ``qmodel`` (the simulation) and of its deployable copy (``freeze``: the
    export's int32 biases) on the first ``scenes`` of the fixed generated test set."""
    from ..workflow.data import DataSpec, evaluation_set
    from ..workflow.evaluation import evaluate

    data = evaluation_set(DataSpec("synth"), scenes, float_model.model_input)
    sess = open_session(onnx_path, threads=threads)
    onnx_model = OnnxLaneModel(sess, float_model)
    r_onnx = evaluate(onnx_model, data, progress=False)
    r_torch = evaluate(qmodel, data, progress=False)
    r_deploy = evaluate(freeze(qmodel)[0], data, progress=False)
    return dict(onnx_f1=r_onnx["f1"], torch_f1=r_torch["f1"], deploy_f1=r_deploy["f1"],
                optimization_level=sess.optimization_level, onnx_xs=r_onnx["xs"], torch_xs=r_torch["xs"])


def compare_outputs(qmodel, float_model, onnx_path: str, images: torch.Tensor, threads=None,
                    level: str = "all") -> Dict[str, dict]:
    """Per output agreement (see :func:`output_agreement`) on ``images``."""
    sess = open_session(onnx_path, level=level, threads=threads)
    ref = run_batches(qmodel, images)
    got = run_batches(OnnxLaneModel(sess, float_model), images)
    return output_agreement(ref, got)
