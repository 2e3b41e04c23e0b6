"""The exported model scored as a lane detector: decoded F1 of onnxruntime, the simulation and its deployable
copy on the same generated test scenes."""
from __future__ import annotations

from typing import Dict

from ..export import OnnxLaneModel, freeze, open_session
from .data import DataSpec, evaluation_set
from .evaluation import evaluate


def runtime_f1(qmodel, float_model, onnx_path: str, scenes: int, threads=None) -> Dict[str, object]:
    """F1 of the onnxruntime model, of ``qmodel`` (the simulation) and of its deployable copy (``freeze``: the
    export's int32 biases) on the first ``scenes`` of the fixed generated test set."""
    data = evaluation_set(DataSpec("synth"), scenes, float_model.model_input)
    sess = open_session(onnx_path, threads=threads)
    onnx_model = OnnxLaneModel(sess, float_model)
    r_onnx = evaluate(onnx_model, data, progress=False)
    r_torch = evaluate(qmodel, data, progress=False)
    r_deploy = evaluate(freeze(qmodel)[0], data, progress=False)
    return dict(onnx_f1=r_onnx["f1"], torch_f1=r_torch["f1"], deploy_f1=r_deploy["f1"],
                optimization_level=sess.optimization_level, onnx_xs=r_onnx["xs"], torch_xs=r_torch["xs"])
