"""The fused quantization operators (``torch.ops.selfocus.*``) with autograd, and their references.

``selfocus_ext.ops.reference`` holds a plain-torch implementation of every op: the readable specification
the tests compare against.
"""
from .._native import cuda_compiled, set_device_value_checks
from .quant import act_quant, adaround_init, adaround_quant, adaround_regularizer, fake_quant, qdrop_mask

__all__ = [
    "act_quant",
    "adaround_init",
    "adaround_quant",
    "adaround_regularizer",
    "cuda_compiled",
    "fake_quant",
    "qdrop_mask",
    "set_device_value_checks",
]
