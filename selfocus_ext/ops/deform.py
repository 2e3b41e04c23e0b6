"""Python face of the modulated deformable convolution op (``torch.ops.selfocus.deform_conv2d``, DCNv2):
argument conversion, fake kernels and autograd. The kernels (csrc/core/deform_conv.h on the CPU, csrc/cuda
on a GPU) take float32 tensors; ``reference.deform_conv2d`` is the plain-torch specification."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch

from .. import native  # noqa: F401  (registers torch.ops.selfocus.*)

Pair = Union[int, Sequence[int]]


def as_pair(value: Pair, name: str) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    return (a, b)


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                  bias: Optional[torch.Tensor] = None, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1,
                  groups: int = 1, offset_groups: int = 1) -> torch.Tensor:
    """Modulated deformable convolution: input [B, C, H, W], offset [B, 2 * offset_groups * kh * kw, Ho, Wo]
    ((dy, dx) per kernel tap), mask [B, offset_groups * kh * kw, Ho, Wo], weight [Co, C / groups, kh, kw]."""
    for name, t in (("input", input), ("offset", offset), ("mask", mask), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"deform_conv2d: {name} must be a torch.Tensor, got {type(t).__name__}")
    return torch.ops.selfocus.deform_conv2d(input, offset, mask, weight, bias, as_pair(stride, "stride"),
                                            as_pair(padding, "padding"), as_pair(dilation, "dilation"), int(groups),
                                            int(offset_groups))


def _out_shape(input, weight, stride, padding, dilation):
    B, _, H, W = input.shape
    Co, _, kh, kw = weight.shape
    return (B, Co, (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1,
            (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1)


@torch.library.register_fake("selfocus::deform_conv2d")
def _deform_fake(input, offset, mask, weight, bias, stride, padding, dilation, groups, offset_groups):
    torch._check(input.dim() == 4 and weight.dim() == 4, lambda: "deform_conv2d: input and weight must be 4-D")
    return input.new_empty(_out_shape(input, weight, stride, padding, dilation))


@torch.library.register_fake("selfocus::deform_conv2d_backward")
def _deform_backward_fake(grad, input, offset, mask, weight, stride, padding, dilation, groups, offset_groups):
    return (torch.empty_like(input), torch.empty_like(offset), torch.empty_like(mask), torch.empty_like(weight),
            weight.new_empty((weight.shape[0],)))


def _setup(ctx, inputs, output):
    input, offset, mask, weight, bias, stride, padding, dilation, groups, offset_groups = inputs
    ctx.save_for_backward(input, offset, mask, weight)
    ctx.args = (stride, padding, dilation, groups, offset_groups)
    ctx.has_bias = bias is not None


def _backward(ctx, grad):
    input, offset, mask, weight = ctx.saved_tensors
    g_in, g_off, g_mask, g_w, g_b = torch.ops.selfocus.deform_conv2d_backward(grad.contiguous(), input, offset, mask,
                                                                             weight, *ctx.args)
    return g_in, g_off, g_mask, g_w, (g_b if ctx.has_bias else None), None, None, None, None, None


torch.library.register_autograd("selfocus::deform_conv2d", _backward, setup_context=_setup)
