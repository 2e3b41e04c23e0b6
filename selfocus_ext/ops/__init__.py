"""The Python face of every ``torch.ops.selfocus.*`` op: wrappers, autograd and fake kernels, registered when
``selfocus_ext`` is imported. ``quant``: the fused quantization ops; ``lanes``: distortion score, assignment,
CULane matching, line suppression; ``decoders``: the batched lane decoders' fake kernels; ``deform``: the
modulated deformable convolution.

``selfocus_ext.ops.reference`` holds a plain-torch implementation of the quantization ops: the readable
specification the tests compare against.
"""
from ..native import cuda_compiled, set_device_value_checks
from . import decoders, lanes  # noqa: F401  (fake kernels)
from .deform import deform_conv2d
from .quant import act_quant, adaround_init, adaround_quant, adaround_quant_ste, adaround_regularizer, fake_quant, qdrop_mask

__all__ = [
    "act_quant",
    "adaround_init",
    "adaround_quant",
    "adaround_quant_ste",
    "adaround_regularizer",
    "cuda_compiled",
    "deform_conv2d",
    "fake_quant",
    "qdrop_mask",
    "set_device_value_checks",
]
