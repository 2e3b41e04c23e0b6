"""fake_quant against its reference and against PyTorch's own fake-quant ops."""
import numpy as np
import pytest
import torch

from selfocus_ext import fake_quant
from selfocus_ext.ops import reference as ref


def grads(fn, x, g):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    y.backward(g)
    return y.detach(), x.grad


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("signed", [True, False])
def test_per_tensor_matches_reference(gen, bits, signed):
    x = torch.randn(4099, generator=gen) * 3
    s = float(torch.rand((), generator=gen) * 0.5 + 0.01)
    g = torch.randn(4099, generator=gen)
    y, gx = grads(lambda t: fake_quant(t, s, bits, signed), x, g)
    y_ref, gx_ref = grads(lambda t: ref.fake_quant(t, torch.tensor(s), bits, signed), x, g)
    assert torch.equal(y, y_ref)
    assert torch.equal(gx, gx_ref)


@pytest.mark.parametrize("ch_axis", [0, 1, 3, -1, -3])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_channel_matches_reference(gen, ch_axis, bits):
    x = torch.randn(3, 5, 4, 7, generator=gen) * 2
    scale = torch.rand(x.shape[ch_axis], generator=gen) * 0.3 + 0.02
    g = torch.randn(x.shape, generator=gen)
    y, gx = grads(lambda t: fake_quant(t, scale, bits, True, ch_axis), x, g)
    y_ref, gx_ref = grads(lambda t: ref.fake_quant(t, scale, bits, True, ch_axis), x, g)
    assert torch.equal(y, y_ref)
    assert torch.equal(gx, gx_ref)


def test_8bit_equals_torch_per_tensor(gen):
    for _ in range(5):
        x = torch.randn(65537, generator=gen) * 10
        s = float(torch.rand((), generator=gen) * 0.2 + 1e-3)
        g = torch.randn(x.shape, generator=gen)
        y, gx = grads(lambda t: fake_quant(t, s, 8), x, g)
        y_t, gx_t = grads(lambda t: torch.fake_quantize_per_tensor_affine(t, s, 0, -128, 127), x, g)
        assert torch.equal(y, y_t)
        assert torch.equal(gx, gx_t)
        y_u = fake_quant(x, s, 8, signed=False)
        assert torch.equal(y_u, torch.fake_quantize_per_tensor_affine(x, s, 0, 0, 255))


@pytest.mark.parametrize("ch_axis", [0, 1, 2])
def test_8bit_equals_torch_per_channel(gen, ch_axis):
    x = torch.randn(33, 17, 29, generator=gen) * 5
    scale = torch.rand(x.shape[ch_axis], generator=gen) * 0.1 + 1e-3
    zp = torch.zeros(x.shape[ch_axis], dtype=torch.int32)
    g = torch.randn(x.shape, generator=gen)
    y, gx = grads(lambda t: fake_quant(t, scale, 8, True, ch_axis), x, g)
    y_t, gx_t = grads(lambda t: torch.fake_quantize_per_channel_affine(t, scale, zp, ch_axis, -128, 127), x, g)
    assert torch.equal(y, y_t)
    assert torch.equal(gx, gx_t)


def test_exact_halves_round_to_even():
    s = 0.25
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5]) * s
    y = fake_quant(x, s, 8)
    assert y.tolist() == [v * s for v in [0.0, 2.0, 2.0, 4.0, -0.0, -2.0, -2.0]]


def _float32_ties_with_inexact_products(n_want=64):
    """x, s pairs where float32(x * (1/s)) is exactly k + 0.5 but the exact product is not: rounding the
    exact product (what a fused multiply-add would do) gives a different integer than rounding the float32
    product (what PyTorch does)."""
    rng = np.random.default_rng(7)
    xs, ss = [], []
    while len(xs) < n_want:
        s = np.float32(rng.uniform(0.01, 0.5))
        inv = np.float32(1) / s
        k = rng.integers(-100, 100, size=256)
        x0 = ((k + 0.5) * np.float64(s)).astype(np.float32)
        for ulps in (-2, -1, 1, 2):
            x = np.nextafter(x0, np.float32(np.inf) if ulps > 0 else np.float32(-np.inf)).astype(np.float32)
            if abs(ulps) == 2:
                x = np.nextafter(x, np.float32(np.inf) if ulps > 0 else np.float32(-np.inf)).astype(np.float32)
            exact = x.astype(np.float64) * np.float64(inv)
            f32 = exact.astype(np.float32)
            hit = (f32.astype(np.float64) == k + 0.5) & (exact != f32.astype(np.float64))
            for xi in x[hit]:
                xs.append(float(xi))
                ss.append(float(s))
    return torch.tensor(xs[:n_want]), torch.tensor(ss[:n_want])


def test_float32_product_is_rounded_not_the_exact_product():
    xs, ss = _float32_ties_with_inexact_products()
    for x, s in zip(xs, ss):
        t = x.reshape(1)
        assert torch.equal(fake_quant(t, float(s), 8), torch.fake_quantize_per_tensor_affine(t, float(s), 0, -128, 127))


@pytest.mark.parametrize("signed", [True, False])
def test_saturation_at_both_ends(signed):
    bits, s = 3, 0.5
    lo, hi = ref.int_range(bits, signed)
    # levels: far below, just below, the ends themselves, just above, far above
    levels = torch.tensor([lo - 1000.0, lo - 1.0, lo - 0.6, lo, lo - 0.4, hi + 0.4, hi, hi + 0.6, hi + 1.0, hi + 1e6])
    x = (levels * s).requires_grad_(True)
    y = fake_quant(x, s, bits, signed)
    y.sum().backward()
    expect_q = torch.clamp(torch.round(levels), lo, hi)
    assert torch.equal(y.detach(), expect_q * s)
    assert x.grad.tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_two_bit_grid():
    x = torch.linspace(-3, 3, 61)
    y = fake_quant(x, 1.0, 2)
    assert set(y.tolist()) == {-2.0, -1.0, 0.0, 1.0}
    assert set(fake_quant(x, 1.0, 2, signed=False).tolist()) == {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("shape,ch_axis,nscale", [((0,), None, 1), ((3, 0, 2), 0, 3), ((3, 0, 2), 1, 0)])
def test_empty_tensors(shape, ch_axis, nscale):
    x = torch.empty(shape, requires_grad=True)
    scale = torch.full((nscale,), 0.1) if ch_axis is not None else 0.1
    y = fake_quant(x, scale, 4, True, ch_axis)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape


def test_non_contiguous_inputs(gen):
    base = torch.randn(6, 10, 8, generator=gen)
    views = [base.transpose(0, 2), base[:, ::3], base[1:, :, 2:].permute(2, 0, 1)]
    for v in views:
        assert not v.is_contiguous()
        scale = torch.rand(v.shape[1], generator=gen) + 0.05
        for ch_axis, sc in [(None, 0.07), (1, scale)]:
            out = fake_quant(v, sc, 4, True, ch_axis)
            assert torch.equal(out, fake_quant(v.contiguous(), sc, 4, True, ch_axis))
            assert torch.equal(out, ref.fake_quant(v, torch.as_tensor(sc), 4, True, ch_axis))
    # a non-contiguous (expanded) incoming gradient is handled too
    x = torch.randn(5, 7, generator=gen) * 0.5
    g = torch.ones(7).expand(5, 7)
    _, gx = grads(lambda t: fake_quant(t, 0.1, 4), x, g)
    _, gx_ref = grads(lambda t: ref.fake_quant(t, torch.tensor(0.1), 4), x, g)
    assert torch.equal(gx, gx_ref)
    assert 0 < gx.sum() < gx.numel()


def test_scale_as_tensor_and_float_agree(gen):
    x = torch.randn(100, generator=gen)
    assert torch.equal(fake_quant(x, 0.03, 6), fake_quant(x, torch.tensor([0.03]), 6))
    assert torch.equal(fake_quant(x, 0.03, 6), fake_quant(x, torch.tensor(0.03, dtype=torch.float64), 6))
