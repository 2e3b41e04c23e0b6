"""Python face of the fused quantization ops: argument conversion, fake (meta) kernels and autograd.

The kernels and their argument checks live in C++ (csrc/torch); this module only turns Python numbers
into tensors and tells torch how each op differentiates and what shape it returns.
"""
from __future__ import annotations

from numbers import Real
from typing import Optional, Union

import torch

from .. import native  # noqa: F401  (registers torch.ops.selfocus.*)
from .devices import same_device as _same_device

ScaleLike = Union[torch.Tensor, float]

_ops = torch.ops.selfocus
# Largest weight (elements) for which the CPU AdaRound forward also writes its slope (measured on the 2-core
# AVX-512 machine: 1M elements fwd+bwd 0.78 ms against 0.99 ms recomputing; 16M 44 ms against 24 ms).
SLOPE_MAX_ELEMENTS = 1 << 22


def _param_tensor(value: ScaleLike, like: torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Real) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float32, device=like.device)
    raise TypeError(f"{name} must be a tensor or a real number, got {type(value).__name__}")


def _check_tensor(value, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


# --------------------------------------------------------------------------------------------------
# Public functions


def fake_quant(
    x: torch.Tensor, scale: ScaleLike, bits: int, signed: bool = True, ch_axis: Optional[int] = None
) -> torch.Tensor:
    """Symmetric round-to-nearest fake quantization, zero point 0.

    ``q = clamp(nearbyint(x * (1/scale)), qmin, qmax)``, returns ``q * scale``; ``scale`` is one value (per
    tensor) or one per index of ``ch_axis``. Backward is straight-through where the rounded value lies in
    ``[qmin, qmax]`` and zero outside; ``scale`` gets no gradient.
    """
    _check_tensor(x, "x")
    return _ops.fake_quant(x, _param_tensor(scale, x, "scale"), bits, signed, ch_axis)


def adaround_quant(
    w: torch.Tensor, v: torch.Tensor, scale: torch.Tensor, bits: int, hard: bool = False
) -> torch.Tensor:
    """AdaRound weight fake quantization, signed, per output channel (dim 0 of ``w``).

    Soft: ``scale * clamp(floor(w/scale) + h(v), qmin, qmax)`` with the rectified sigmoid
    ``h(v) = clamp(sigmoid(v) * 1.2 - 0.1, 0, 1)``; hard: ``h(v)`` replaced by ``v >= 0``.
    The gradient reaches ``v`` only (soft mode); the hard mode has none.
    """
    _check_tensor(w, "w")
    _check_tensor(v, "v")
    scale = _param_tensor(scale, w, "scale")
    if (not hard and v.requires_grad and torch.is_grad_enabled() and v.device.type == "cpu"
            and v.numel() <= SLOPE_MAX_ELEMENTS):
        # While the tensors stay in cache the CPU forward is bound by the sigmoid, so it also writes dy/dv and
        # the backward only multiplies. Beyond that, and on a GPU, memory is the bound: the backward
        # recomputes rather than store and read a second tensor.
        return _ops.adaround_quant_slope(w, v, scale, bits)[0]
    return _ops.adaround_quant(w, v, scale, bits, hard)


def adaround_quant_ste(w: torch.Tensor, v: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """AdaRound with the hard rounding forward and the soft rounding's gradient (straight-through).

    The value is ``adaround_quant(w, v, scale, bits, hard=True)`` (the weights that will be deployed); the
    gradient to ``v`` is the soft mode's, ``grad * scale * h'(v)`` where neither ``h`` nor the rounded value
    is clamped. One fused forward (no sigmoid) and one backward, where the composite
    ``hard + (soft - soft.detach())`` ran the op twice and three elementwise passes.
    """
    _check_tensor(w, "w")
    _check_tensor(v, "v")
    return _ops.adaround_quant_ste(w, v, _param_tensor(scale, w, "scale"), bits)


def adaround_init(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """The ``v`` for which ``h(v)`` equals the fractional part of ``w/scale`` (soft weight == w)."""
    _check_tensor(w, "w")
    return _ops.adaround_init(w, _param_tensor(scale, w, "scale"), bits)


def adaround_regularizer(v: torch.Tensor, beta: float) -> torch.Tensor:
    """AdaRound's rounding regulariser ``sum(1 - |2 h(v) - 1| ** beta)`` (a 0-dim tensor).

    Value and gradient come from one fused pass over ``v``; the gradient is only computed when ``v``
    requires it.
    """
    _check_tensor(v, "v")
    with_grad = torch.is_grad_enabled() and v.requires_grad
    loss, _ = _ops.adaround_regularizer(v, float(beta), with_grad)
    return loss


def act_quant(
    x: torch.Tensor,
    step: ScaleLike,
    bits: int,
    signed: bool,
    keep_prob: float = 1.0,
    seed: int = 0,
    grad_scale: float = 1.0,
) -> torch.Tensor:
    """LSQ activation fake quantization with a learnable per-tensor ``step``, and QDrop.

    Each element is quantized with probability ``keep_prob`` (else passed through unchanged); the draw is
    a pure function of ``(seed, element index)`` (Philox4x32-10), so a seed reproduces its mask and the
    backward recomputes it. Gradients: ``x`` straight-through inside the range (and 1 where dropped);
    ``step`` the LSQ gradient (``round(x/s) - x/s`` inside, ``qmin``/``qmax`` outside) times ``grad_scale``,
    summed to the step's shape.
    """
    _check_tensor(x, "x")
    return _ops.act_quant(x, _param_tensor(step, x, "step"), bits, signed, float(keep_prob), int(seed),
                          float(grad_scale))


def qdrop_mask(x: torch.Tensor, keep_prob: float, seed: int) -> torch.Tensor:
    """The boolean mask (True = quantized) that ``act_quant`` uses for ``x``'s shape and this seed."""
    _check_tensor(x, "x")
    return _ops.qdrop_mask(x, float(keep_prob), int(seed))


# --------------------------------------------------------------------------------------------------
# Fake kernels: the real kernels return contiguous tensors of the input's shape (with the kernels' device
# check, see .devices).


@torch.library.register_fake("selfocus::fake_quant")
def _fake_quant_fake(x, scale, bits, signed=True, ch_axis=None):
    _same_device("fake_quant", x=x, scale=scale)
    return x.new_empty(x.shape)


@torch.library.register_fake("selfocus::fake_quant_backward")
def _fake_quant_backward_fake(grad, x, scale, bits, signed, ch_axis):
    _same_device("fake_quant_backward", x=x, grad=grad, scale=scale)
    return x.new_empty(x.shape)


@torch.library.register_fake("selfocus::adaround_quant")
def _adaround_quant_fake(w, v, scale, bits, hard=False):
    _same_device("adaround_quant", w=w, v=v, scale=scale)
    return w.new_empty(w.shape)


@torch.library.register_fake("selfocus::adaround_quant_backward")
def _adaround_quant_backward_fake(grad, w, v, scale, bits):
    _same_device("adaround_quant_backward", w=w, v=v, grad=grad, scale=scale)
    return v.new_empty(v.shape)


@torch.library.register_fake("selfocus::adaround_quant_ste")
def _adaround_quant_ste_fake(w, v, scale, bits):
    _same_device("adaround_quant_ste", w=w, v=v, scale=scale)
    return w.new_empty(w.shape)


@torch.library.register_fake("selfocus::adaround_quant_slope")
def _adaround_quant_slope_fake(w, v, scale, bits):
    _same_device("adaround_quant_slope", w=w, v=v, scale=scale)
    return w.new_empty(w.shape), w.new_empty(w.shape)


@torch.library.register_fake("selfocus::adaround_quant_slope_backward")
def _adaround_quant_slope_backward_fake(grad, slope):
    _same_device("adaround_quant_slope_backward", grad=grad, slope=slope)
    return slope.new_empty(slope.shape)


@torch.library.register_fake("selfocus::adaround_init")
def _adaround_init_fake(w, scale, bits):
    _same_device("adaround_init", w=w, scale=scale)
    return w.new_empty(w.shape)


@torch.library.register_fake("selfocus::adaround_regularizer")
def _adaround_regularizer_fake(v, beta, with_grad=True):
    return v.new_empty(()), v.new_empty(v.shape if with_grad else (0,))


@torch.library.register_fake("selfocus::act_quant")
def _act_quant_fake(x, step, bits, signed, keep_prob=1.0, seed=0, grad_scale=1.0):
    _same_device("act_quant", x=x, step=step)
    return x.new_empty(x.shape)


@torch.library.register_fake("selfocus::act_quant_backward")
def _act_quant_backward_fake(grad, x, step, bits, signed, keep_prob, seed, grad_scale):
    _same_device("act_quant_backward", x=x, grad=grad, step=step)
    return x.new_empty(x.shape), step.new_empty(step.shape)


@torch.library.register_fake("selfocus::qdrop_mask")
def _qdrop_mask_fake(x, keep_prob, seed):
    return x.new_empty(x.shape, dtype=torch.bool)


# --------------------------------------------------------------------------------------------------
# Autograd. Backward passes recompute masks from the saved inputs instead of storing them.


def _fake_quant_setup(ctx, inputs, output):
    x, scale, bits, signed, ch_axis = inputs
    ctx.save_for_backward(x, scale)
    ctx.qargs = (bits, signed, ch_axis)


def _fake_quant_backward(ctx, grad):
    x, scale = ctx.saved_tensors
    gx = _ops.fake_quant_backward(grad, x, scale, *ctx.qargs) if ctx.needs_input_grad[0] else None
    return gx, None, None, None, None


torch.library.register_autograd("selfocus::fake_quant", _fake_quant_backward, setup_context=_fake_quant_setup)


def _adaround_setup(ctx, inputs, output):
    w, v, scale, bits, hard = inputs
    ctx.save_for_backward(w, v, scale)
    ctx.bits = bits
    ctx.hard = hard


def _adaround_backward(ctx, grad):
    w, v, scale = ctx.saved_tensors
    gv = None
    if ctx.needs_input_grad[1] and not ctx.hard:
        gv = _ops.adaround_quant_backward(grad, w, v, scale, ctx.bits)
    return None, gv, None, None, None


torch.library.register_autograd("selfocus::adaround_quant", _adaround_backward, setup_context=_adaround_setup)


def _adaround_ste_setup(ctx, inputs, output):
    w, v, scale, bits = inputs
    ctx.save_for_backward(w, v, scale)
    ctx.bits = bits


def _adaround_ste_backward(ctx, grad):
    w, v, scale = ctx.saved_tensors
    gv = _ops.adaround_quant_backward(grad, w, v, scale, ctx.bits) if ctx.needs_input_grad[1] else None
    return None, gv, None, None


torch.library.register_autograd(
    "selfocus::adaround_quant_ste", _adaround_ste_backward, setup_context=_adaround_ste_setup
)


def _adaround_slope_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])


def _adaround_slope_backward(ctx, grad, _grad_slope):
    (slope,) = ctx.saved_tensors
    gv = _ops.adaround_quant_slope_backward(grad, slope) if ctx.needs_input_grad[1] else None
    return None, gv, None, None


torch.library.register_autograd(
    "selfocus::adaround_quant_slope", _adaround_slope_backward, setup_context=_adaround_slope_setup
)


def _regularizer_setup(ctx, inputs, output):
    v, beta, with_grad = inputs
    _, dv = output
    ctx.mark_non_differentiable(dv)
    ctx.with_grad = with_grad
    ctx.save_for_backward(dv)


def _regularizer_backward(ctx, grad_loss, _grad_dv):
    if not ctx.needs_input_grad[0]:
        return None, None, None
    if not ctx.with_grad:
        raise RuntimeError(
            "adaround_regularizer: called with with_grad=False, so no gradient was computed; "
            "call it with with_grad=True (selfocus_ext.adaround_regularizer does this when v requires grad)"
        )
    (dv,) = ctx.saved_tensors
    return grad_loss * dv, None, None


torch.library.register_autograd(
    "selfocus::adaround_regularizer", _regularizer_backward, setup_context=_regularizer_setup
)


def _act_quant_setup(ctx, inputs, output):
    x, step, bits, signed, keep_prob, seed, grad_scale = inputs
    ctx.save_for_backward(x, step)
    ctx.qargs = (bits, signed, keep_prob, seed, grad_scale)


def _act_quant_backward(ctx, grad):
    x, step = ctx.saved_tensors
    if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
        return None, None, None, None, None, None, None
    gx, gstep = _ops.act_quant_backward(grad, x, step, *ctx.qargs)
    return (
        gx if ctx.needs_input_grad[0] else None,
        gstep if ctx.needs_input_grad[1] else None,
        None,
        None,
        None,
        None,
        None,
    )


torch.library.register_autograd("selfocus::act_quant", _act_quant_backward, setup_context=_act_quant_setup)

