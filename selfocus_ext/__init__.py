"""selfocus_ext: post-training quantization for lane detection (Selective Focus) on fused C++/CUDA ops.

Importing the package loads the native extension, which registers ``torch.ops.selfocus.*``, and their
Python face (selfocus_ext.ops: autograd and fake kernels).
"""
from . import lanes, metrics  # noqa: F401
from .ops import act_quant, adaround_init, adaround_quant, adaround_regularizer, fake_quant, qdrop_mask

__version__ = "0.1.0"

__all__ = [
    "act_quant",
    "adaround_init",
    "adaround_quant",
    "adaround_regularizer",
    "fake_quant",
    "qdrop_mask",
]
