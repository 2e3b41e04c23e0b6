"""Bad input raises a clear error naming the argument and what was expected (never a crash)."""
import math

import pytest
import torch

from selfocus_ext import act_quant, adaround_init, adaround_quant, adaround_regularizer, fake_quant, qdrop_mask

x = torch.randn(4, 6)
w = torch.randn(4, 3, 3, 3)
s4 = torch.full((4,), 0.1)


@pytest.mark.parametrize("bits", [0, 1, 9, 16, -4])
def test_bits_out_of_range(bits):
    for call in (
        lambda: fake_quant(x, 0.1, bits),
        lambda: adaround_quant(w, torch.zeros_like(w), s4, bits),
        lambda: adaround_init(w, s4, bits),
        lambda: act_quant(x, 0.1, bits, True),
    ):
        with pytest.raises(RuntimeError, match=f"bits must be an integer in 2..8, got {bits}"):
            call()


@pytest.mark.parametrize("bad", [0.0, -0.1, math.inf, -math.inf, math.nan, 1e-39])
def test_scale_not_positive_finite(bad):
    with pytest.raises(RuntimeError, match="fake_quant: scale must be positive, finite and at least"):
        fake_quant(x, bad, 4)
    per_channel = torch.tensor([0.1, 0.2, bad, 0.1, 0.3, 0.2])
    with pytest.raises(RuntimeError, match="fake_quant: scale must be positive, finite and at least.*index 2"):
        fake_quant(x, per_channel, 4, ch_axis=1)
    with pytest.raises(RuntimeError, match="adaround_quant: scale must be positive, finite and at least"):
        adaround_quant(w, torch.zeros_like(w), torch.tensor([0.1, bad, 0.1, 0.1]), 4)
    with pytest.raises(RuntimeError, match="act_quant: step must be positive, finite and at least"):
        act_quant(x, bad, 4, True)


def test_scale_length_mismatch():
    with pytest.raises(RuntimeError, match=r"fake_quant: scale must have 6 element\(s\) \(one per channel along ch_axis\), got 4"):
        fake_quant(x, torch.ones(4), 4, ch_axis=1)
    with pytest.raises(RuntimeError, match=r"fake_quant: scale must have 1 element\(s\) \(one scale per tensor\), got 4"):
        fake_quant(x, torch.ones(4), 4)
    with pytest.raises(RuntimeError, match=r"adaround_quant: scale must have 4 element\(s\) \(one per output channel"):
        adaround_quant(w, torch.zeros_like(w), torch.ones(3), 4)
    with pytest.raises(RuntimeError, match=r"act_quant: step must have 1 element\(s\)"):
        act_quant(x, torch.ones(2), 4, True)


def test_ch_axis_out_of_range():
    with pytest.raises(RuntimeError, match=r"fake_quant: ch_axis must be in \[-2, 1\].*got 2"):
        fake_quant(x, torch.ones(6), 4, ch_axis=2)
    with pytest.raises(RuntimeError, match="ch_axis needs x with at least one dimension"):
        fake_quant(torch.tensor(1.0), torch.ones(1), 4, ch_axis=0)


def test_v_and_w_shapes_and_dtypes_differ():
    with pytest.raises(RuntimeError, match=r"adaround_quant: v must have the shape of w \[4, 3, 3, 3\]"):
        adaround_quant(w, torch.zeros(4, 27), s4, 4)
    with pytest.raises(RuntimeError, match="adaround_quant: v must have the dtype of w"):
        adaround_quant(w, torch.zeros(w.shape, dtype=torch.float64), s4, 4)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8, torch.bool, torch.float64, torch.float16])
def test_unsupported_dtypes(dtype):
    bad = torch.ones(4, 6).to(dtype)
    with pytest.raises(RuntimeError, match="fake_quant: x must be float32 on the CPU, got "):
        fake_quant(bad, 0.1, 4)
    with pytest.raises(RuntimeError, match="act_quant: x must be float32 on the CPU"):
        act_quant(bad, 0.1, 4, True)
    with pytest.raises(RuntimeError, match="adaround_regularizer: v must be float32 on the CPU"):
        adaround_regularizer(bad, 2.0)


def test_integer_scale_tensor():
    with pytest.raises(RuntimeError, match="fake_quant: scale must be a floating-point tensor, got Long"):
        fake_quant(x, torch.tensor(1), 4)


def test_tensors_on_different_devices():
    meta_scale = torch.tensor(0.1, device="meta")
    with pytest.raises(RuntimeError, match="fake_quant: scale is on meta but x is on cpu"):
        fake_quant(x, meta_scale, 4)
    with pytest.raises(RuntimeError, match="adaround_quant: v is on meta but w is on cpu"):
        adaround_quant(w, torch.zeros(w.shape, device="meta"), s4, 4)
    with pytest.raises(RuntimeError, match="act_quant: step is on meta but x is on cpu"):
        act_quant(x, meta_scale, 4, True)


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_keep_prob_out_of_range(p):
    with pytest.raises(RuntimeError, match="act_quant: keep_prob must be in \\[0, 1\\]"):
        act_quant(x, 0.1, 4, True, keep_prob=p)
    with pytest.raises(RuntimeError, match="qdrop_mask: keep_prob must be in \\[0, 1\\]"):
        qdrop_mask(x, p, 0)


def test_grad_scale_and_beta():
    with pytest.raises(RuntimeError, match="act_quant: grad_scale must be finite"):
        act_quant(x, 0.1, 4, True, grad_scale=math.inf)
    for beta in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(RuntimeError, match="adaround_regularizer: beta must be positive and finite"):
            adaround_regularizer(torch.zeros(3), beta)


def test_python_face_type_errors():
    with pytest.raises(TypeError, match="scale must be a tensor or a real number, got str"):
        fake_quant(x, "0.1", 4)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        fake_quant([1.0, 2.0], 0.1, 4)
    with pytest.raises(TypeError, match="step must be a tensor or a real number, got NoneType"):
        act_quant(x, None, 4, True)


def test_adaround_on_0dim_weight():
    with pytest.raises(RuntimeError, match="adaround_quant: w must have at least one dimension"):
        adaround_quant(torch.tensor(1.0), torch.tensor(0.0), torch.ones(1), 4)


def test_grad_shape_mismatch_in_backward_op():
    with pytest.raises(RuntimeError, match=r"fake_quant_backward: grad must have the shape of x"):
        torch.ops.selfocus.fake_quant_backward(torch.ones(3), x, torch.tensor(0.1), 4, True, None)
