"""act_quant (LSQ + QDrop) against its reference; QDrop's mask statistics and reproducibility."""
import math

import pytest
import torch

from selfocus_ext import act_quant, fake_quant, qdrop_mask
from selfocus_ext.ops import reference as ref


def run(fn, x, step, g):
    x = x.detach().clone().requires_grad_(True)
    step = step.detach().clone().requires_grad_(True)
    y = fn(x, step)
    y.backward(g)
    return y.detach(), x.grad, step.grad


@pytest.mark.parametrize("bits,signed", [(2, True), (4, True), (4, False), (8, True), (8, False)])
@pytest.mark.parametrize("keep_prob", [1.0, 0.5, 0.1])
def test_matches_reference(gen, bits, signed, keep_prob):
    x = torch.randn(3, 1025, generator=gen) * 2
    step = torch.tensor(0.3 if bits < 8 else 0.02)
    g = torch.randn(x.shape, generator=gen)
    args = (bits, signed, keep_prob, 1234, 0.37)
    y, gx, gs = run(lambda a, s: act_quant(a, s, *args), x, step, g)
    y_r, gx_r, gs_r = run(lambda a, s: ref.act_quant(a, s, *args), x, step, g)
    assert torch.equal(y, y_r)
    torch.testing.assert_close(gx, gx_r, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gs, gs_r, rtol=1e-4, atol=1e-4)


def test_keep_all_equals_fake_quant(gen):
    x = torch.randn(10000, generator=gen) * 4
    for bits, signed in [(8, True), (8, False), (3, True)]:
        assert torch.equal(act_quant(x, 0.05, bits, signed), fake_quant(x, 0.05, bits, signed))
    zp = 0
    assert torch.equal(act_quant(x, 0.05, 8, True), torch.fake_quantize_per_tensor_affine(x, 0.05, zp, -128, 127))


def test_step_gradient_formula():
    # one element per case: inside the range (q - x/s), below (qmin), above (qmax)
    s = torch.tensor(0.5, requires_grad=True)
    x = torch.tensor([0.3, -10.0, 10.0, 1.0])
    act_quant(x, s, 3, True, grad_scale=2.0).backward(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert s.grad.item() == pytest.approx(2.0 * (1.0 - 0.6), rel=1e-6)
    s.grad = None
    act_quant(x, s, 3, True).backward(torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert s.grad.item() == pytest.approx(-4.0 + 3.0)


def test_step_gradient_shape_follows_step(gen):
    x = torch.randn(64, generator=gen)
    for shape in [(), (1,), (1, 1, 1, 1)]:
        s = torch.full(shape, 0.1, requires_grad=True)
        act_quant(x, s, 4, True).sum().backward()
        assert s.grad.shape == torch.Size(shape)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_fraction_within_statistical_bounds(p):
    n = 1 << 20
    x = torch.zeros(n)
    frac = qdrop_mask(x, p, 99).float().mean().item()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(frac - p) < 6 * sigma


def test_mask_equals_reference_philox():
    for shape, p, seed in [((7,), 0.5, 0), ((3, 1001), 0.3, -5), ((2, 2, 517), 0.77, 2**40 + 3)]:
        x = torch.zeros(shape)
        assert torch.equal(qdrop_mask(x, p, seed), ref.qdrop_mask(shape, p, seed))


def test_mask_extremes():
    x = torch.zeros(5000)
    assert bool(qdrop_mask(x, 1.0, 3).all())
    assert not bool(qdrop_mask(x, 0.0, 3).any())


def test_same_seed_reproduces_other_seed_differs(gen):
    x = torch.randn(50000, generator=gen)
    a = act_quant(x, 0.1, 4, True, 0.5, seed=7)
    b = act_quant(x, 0.1, 4, True, 0.5, seed=7)
    c = act_quant(x, 0.1, 4, True, 0.5, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(qdrop_mask(x, 0.5, 7), qdrop_mask(x, 0.5, 8))


def test_backward_uses_the_forward_mask(gen):
    x = (torch.randn(20000, generator=gen) * 3).requires_grad_(True)
    step = torch.tensor(0.2, requires_grad=True)
    bits, seed, p = 3, 31337, 0.5
    y = act_quant(x, step, bits, True, p, seed)
    g = torch.randn(x.shape, generator=gen)
    y.backward(g)
    keep = qdrop_mask(x, p, seed)
    fq = fake_quant(x.detach(), 0.2, bits)
    # forward: quantized exactly where kept, untouched elsewhere
    assert torch.equal(y.detach()[keep], fq[keep])
    assert torch.equal(y.detach()[~keep], x.detach()[~keep])
    # backward: dropped elements pass the gradient, kept ones follow the straight-through range test
    q = torch.round(x.detach() * torch.reciprocal(torch.tensor(0.2)))
    inside = (q >= -4) & (q <= 3)
    expect = torch.where(keep, g * inside, g)
    assert torch.equal(x.grad, expect)
    assert (~inside & keep).any()  # the test exercises saturated kept elements


def test_keep_nothing_is_identity(gen):
    x = torch.randn(1000, generator=gen, requires_grad=True)
    s = torch.tensor(0.1, requires_grad=True)
    y = act_quant(x, s, 4, True, keep_prob=0.0, seed=5)
    y.sum().backward()
    assert torch.equal(y.detach(), x.detach())
    assert torch.equal(x.grad, torch.ones_like(x))
    assert s.grad.item() == 0.0


def test_unsigned_clamps_negatives(gen):
    x = torch.randn(1000, generator=gen)
    y = act_quant(x, 0.1, 4, False)
    assert (y >= 0).all() and (y[x < -0.05] == 0).all()


def test_empty_and_non_contiguous(gen):
    x = torch.empty(0, 3, requires_grad=True)
    s = torch.tensor(0.1, requires_grad=True)
    act_quant(x, s, 4, True, 0.5, 1).sum().backward()
    assert x.grad.shape == x.shape and s.grad.item() == 0.0
    base = torch.randn(9, 40, generator=gen)
    v = base.t()[::2]
    assert not v.is_contiguous()
    assert torch.equal(act_quant(v, 0.2, 4, True, 0.5, 9), act_quant(v.contiguous(), 0.2, 4, True, 0.5, 9))
    assert torch.equal(act_quant(v, 0.2, 4, True, 0.5, 9), ref.act_quant(v, 0.2, 4, True, 0.5, 9))


def test_step_gradient_is_deterministic(gen):
    x = torch.randn(300000, generator=gen)
    grads = []
    for _ in range(3):
        s = torch.tensor(0.05, requires_grad=True)
        act_quant(x, s, 4, True, 0.5, 3).sum().backward()
        grads.append(s.grad.item())
    assert grads[0] == grads[1] == grads[2]
