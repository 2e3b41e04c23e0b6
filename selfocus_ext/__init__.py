"""selfocus_ext: post-training quantization for lane detection (Selective Focus) on fused C++/CUDA ops.

Importing the package loads the native extension, which registers ``torch.ops.selfocus.*``, and their
Python face (selfocus_ext.ops: autograd and fake kernels), and the quantization entry for other code:
``QuantConfig``, ``quantize_``, ``tune_``, ``export_onnx`` (selfocus_ext.api). OpenCV, ONNX and the data
sets load only where they are used.
"""
from . import lanes, metrics  # noqa: F401
from .api import TuneResult, export_onnx, quantize_, tune_
from .ops import act_quant, adaround_init, adaround_quant, adaround_quant_ste, adaround_regularizer, fake_quant, qdrop_mask
from .quant import QuantConfig

__version__ = "0.1.0"

__all__ = [
    "QuantConfig",
    "TuneResult",
    "act_quant",
    "adaround_init",
    "adaround_quant",
    "adaround_quant_ste",
    "adaround_regularizer",
    "export_onnx",
    "fake_quant",
    "qdrop_mask",
    "quantize_",
    "tune_",
]
