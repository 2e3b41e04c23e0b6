"""adaround_quant, adaround_init and adaround_regularizer against their references."""
import pytest
import torch

from selfocus_ext import adaround_init, adaround_quant, adaround_quant_ste, adaround_regularizer
from selfocus_ext.ops import quant as quant_ops
from selfocus_ext.ops import reference as ref


def conv_weight(gen, shape=(16, 8, 3, 3), bits=4):
    w = torch.randn(shape, generator=gen) * 0.2
    scale = w.abs().reshape(shape[0], -1).amax(1) / (2 ** (bits - 1) - 1)
    return w, scale


def soft_tol(scale):
    return dict(rtol=0, atol=2e-6 * float(scale.max()) + 1e-7)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_soft_values_and_gradient_match_reference(gen, bits):
    w, scale = conv_weight(gen, bits=bits)
    v = torch.randn(w.shape, generator=gen) * 3
    g = torch.randn(w.shape, generator=gen)
    v1 = v.clone().requires_grad_(True)
    y = adaround_quant(w, v1, scale, bits)
    y.backward(g)
    v2 = v.clone().requires_grad_(True)
    y_ref = ref.adaround_quant(w, v2, scale, bits)
    y_ref.backward(g)
    torch.testing.assert_close(y, y_ref, **soft_tol(scale))
    torch.testing.assert_close(v1.grad, v2.grad, rtol=1e-5, atol=1e-6 * float(scale.max()))
    assert (v1.grad == 0).any() and (v1.grad != 0).any()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_hard_values_exact(gen, bits):
    w, scale = conv_weight(gen, bits=bits)
    v = torch.randn(w.shape, generator=gen)
    v[0, 0, 0] = torch.tensor([0.0, -0.0, 1e-30])  # v >= 0 decides; -0.0 >= 0 too
    y = adaround_quant(w, v, scale, bits, hard=True)
    assert torch.equal(y, ref.adaround_quant(w, v, scale, bits, hard=True))


def test_hard_mode_has_no_gradient(gen):
    w, scale = conv_weight(gen)
    v = torch.randn(w.shape, generator=gen, requires_grad=True)
    adaround_quant(w, v, scale, 4, hard=True).sum().backward()
    assert v.grad is None


def test_gradient_reaches_v_only(gen):
    w, scale = conv_weight(gen)
    w.requires_grad_(True)
    v = torch.randn(w.shape, generator=gen, requires_grad=True)
    adaround_quant(w, v, scale, 4).sum().backward()
    assert w.grad is None
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_init_reproduces_the_weight(gen):
    for bits in (2, 4, 8):
        w, scale = conv_weight(gen, bits=bits)
        v = adaround_init(w, scale, bits)
        torch.testing.assert_close(v, ref.adaround_init(w, scale, bits), rtol=1e-5, atol=2e-5)
        # the soft weight at init is w's fractional rounding, i.e. w itself inside the range
        lo, hi = ref.int_range(bits, True)
        s = scale.reshape(-1, 1, 1, 1)
        expect = torch.minimum(torch.maximum(w, lo * s), hi * s)
        torch.testing.assert_close(adaround_quant(w, v, scale, bits), expect, **soft_tol(scale))


def test_init_on_grid_points(gen):
    scale = torch.tensor([0.5])
    w = torch.tensor([[0.0, 0.5, -1.0, 1.5]])
    v = adaround_init(w, scale, 4)
    # exact grid points have rest 0: h(v) = 0
    torch.testing.assert_close(ref.rectified_sigmoid(v), torch.zeros_like(v), rtol=0, atol=1e-6)


@pytest.mark.parametrize("beta", [2.0, 7.25, 20.0])
def test_regularizer_value_and_gradient(gen, beta):
    v = torch.randn(5000, generator=gen) * 2
    v[:4] = torch.tensor([-30.0, 30.0, 0.0, -0.0])  # saturated h (0 and 1) and h = 0.5
    v1 = v.clone().requires_grad_(True)
    r = adaround_regularizer(v1, beta)
    r.backward()
    v2 = v.clone().requires_grad_(True)
    r_ref = ref.adaround_regularizer(v2, beta)
    r_ref.backward()
    assert r.shape == ()
    torch.testing.assert_close(r, r_ref.detach(), rtol=2e-5, atol=1e-4)
    torch.testing.assert_close(v1.grad, v2.grad, rtol=2e-4, atol=2e-6)


def test_regularizer_skips_gradient_when_not_needed(gen):
    v = torch.randn(100, generator=gen)
    loss, dv = torch.ops.selfocus.adaround_regularizer(v, 3.0, False)
    assert dv.numel() == 0
    with torch.no_grad():
        assert torch.allclose(adaround_regularizer(v.requires_grad_(True), 3.0), loss)
    # asking for a gradient that was not computed is an error, not a silent zero
    v2 = v.detach().requires_grad_(True)
    loss2, _ = torch.ops.selfocus.adaround_regularizer(v2, 3.0, False)
    with pytest.raises(RuntimeError, match="with_grad=False"):
        loss2.backward()


def test_saturated_weights(gen):
    scale = torch.tensor([0.1, 0.1])
    w = torch.tensor([[100.0, -100.0, 0.75], [0.7, -0.8, 0.05]])
    v = torch.zeros_like(w, requires_grad=True)
    y = adaround_quant(w, v, scale, 4)
    y.sum().backward()
    assert y[0, 0].item() == pytest.approx(0.7)
    assert y[0, 1].item() == pytest.approx(-0.8)
    assert v.grad[0, 0] == 0 and v.grad[0, 1] == 0 and v.grad[1, 2] != 0
    # 0.7/0.1 = 7 (qmax) rounds down or up to 7 or 8 -> clamped at 7: gradient only while floor + h <= 7
    yh = adaround_quant(w, torch.full_like(w, 5.0), scale, 4, hard=True)
    assert yh[1, 0].item() == pytest.approx(0.7)


def test_large_v_saturates_h(gen):
    w, scale = conv_weight(gen)
    v = torch.where(torch.rand(w.shape, generator=gen) < 0.5, -50.0, 50.0).requires_grad_(True)
    y = adaround_quant(w, v, scale, 4)
    y.sum().backward()
    assert torch.equal(y.detach(), adaround_quant(w, v.detach(), scale, 4, hard=True))
    assert torch.count_nonzero(v.grad) == 0


@pytest.mark.parametrize("shape", [(0, 3), (4, 0), (0,)])
def test_empty(shape):
    w = torch.empty(shape)
    scale = torch.full((shape[0],), 0.1)
    v = torch.empty(shape, requires_grad=True)
    y = adaround_quant(w, v, scale, 4)
    y.sum().backward()
    assert y.shape == w.shape and v.grad.shape == w.shape
    assert adaround_init(w, scale, 4).shape == w.shape
    assert adaround_regularizer(v, 2.0).item() == 0.0


def test_non_contiguous(gen):
    big_w = torch.randn(16, 20, 3, generator=gen) * 0.2
    big_v = torch.randn(16, 20, 3, generator=gen)
    w, v = big_w[:, ::2], big_v[:, 1::2]
    assert not w.is_contiguous() and not v.is_contiguous()
    scale = torch.rand(16, generator=gen) * 0.05 + 0.01
    for hard in (False, True):
        out = adaround_quant(w, v, scale, 4, hard)
        assert torch.equal(out, adaround_quant(w.contiguous(), v.contiguous(), scale, 4, hard))
    assert torch.equal(adaround_init(w, scale, 4), adaround_init(w.contiguous(), scale, 4))
    assert torch.equal(adaround_regularizer(v, 4.0), adaround_regularizer(v.contiguous(), 4.0))


def test_scale_shapes_accepted(gen):
    w, scale = conv_weight(gen)
    v = torch.randn(w.shape, generator=gen)
    assert torch.equal(adaround_quant(w, v, scale, 4), adaround_quant(w, v, scale.reshape(-1, 1, 1, 1), 4))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "empty"])
def test_slope_forward_equals_the_recomputing_backward(gen, bits, layout, monkeypatch):
    """The CPU training path (value and dy/dv in one pass, backward multiplies) gives exactly the values and
    gradients of the op whose backward recomputes the sigmoid."""
    w, scale = conv_weight(gen, shape=(16, 24), bits=bits)
    v = torch.randn(w.shape, generator=gen) * 3
    if layout == "transposed":  # non-contiguous w and v, channels still along dim 0
        w, v = w.t().contiguous().t(), v.t().contiguous().t()
        assert not w.is_contiguous()
    if layout == "empty":
        w, v = w[:, :0], v[:, :0]
    g = torch.randn(w.shape, generator=gen)
    v1 = v.clone().requires_grad_(True)
    calls = []
    real = torch.ops.selfocus.adaround_quant_slope
    monkeypatch.setattr(quant_ops._ops, "adaround_quant_slope", lambda *a: calls.append(1) or real(*a),
                        raising=False)
    y1 = adaround_quant(w, v1, scale, bits)  # routed to adaround_quant_slope on the CPU
    assert calls
    y1.backward(g)
    v2 = v.clone().requires_grad_(True)
    y2 = torch.ops.selfocus.adaround_quant(w, v2, scale, bits, False)
    y2.backward(g)
    assert torch.equal(y1, y2) and torch.equal(v1.grad, v2.grad)
    y3, slope = torch.ops.selfocus.adaround_quant_slope(w, v, scale, bits)
    assert torch.equal(y3, y2) and torch.equal(slope * g, v2.grad)


def test_slope_output_is_not_differentiable(gen):
    w, scale = conv_weight(gen)
    v = torch.randn(w.shape, generator=gen, requires_grad=True)
    _, slope = torch.ops.selfocus.adaround_quant_slope(w, v, scale, 4)
    assert not slope.requires_grad


def test_slope_backward_checks_its_inputs():
    op = torch.ops.selfocus.adaround_quant_slope_backward
    g, d = torch.randn(4, 6), torch.randn(4, 6)
    assert torch.equal(op(g.t().contiguous().t(), d), g * d)  # non-contiguous grad
    assert op(torch.empty(0, 3), torch.empty(0, 3)).shape == (0, 3)
    with pytest.raises(RuntimeError, match="grad must have the shape of slope"):
        op(torch.randn(4, 5), d)
    with pytest.raises(RuntimeError, match="slope must be float32"):
        op(g.double(), d.double())


# ---- hard forward with the soft gradient (adaround_quant_ste) -------------------------------------------
def _ste_pair(w, v, scale, bits, g):
    """(value, v.grad) of the fused op and of the plain-torch composite, for the same upstream gradient."""
    v1 = v.clone().requires_grad_(True)
    y1 = adaround_quant_ste(w, v1, scale, bits)
    y1.backward(g)
    v2 = v.clone().requires_grad_(True)
    y2 = ref.adaround_quant_ste(w, v2, scale, bits)
    y2.backward(g)
    return y1, v1.grad, y2, v2.grad


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_ste_value_is_hard_and_gradient_is_soft(gen, bits):
    w, scale = conv_weight(gen, bits=bits)
    v = torch.randn(w.shape, generator=gen) * 3
    g = torch.randn(w.shape, generator=gen)
    y, gv, y_ref, gv_ref = _ste_pair(w, v, scale, bits, g)
    assert torch.equal(y, adaround_quant(w, v, scale, bits, hard=True))
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-7 * float(scale.max()))
    torch.testing.assert_close(gv, gv_ref, rtol=1e-5, atol=1e-6 * float(scale.max()))
    # bit for bit the gradient of the soft op (same kernel)
    vs = v.clone().requires_grad_(True)
    torch.ops.selfocus.adaround_quant(w, vs, scale, bits, False).backward(g)
    assert torch.equal(gv, vs.grad)
    assert (gv == 0).any() and (gv != 0).any()


def test_ste_edge_values(gen):
    """Saturated weights, v at 0 / -0 / +-50 / NaN, weights beyond the grid: value as the hard op, gradient
    zero wherever the soft rounding is clamped, as the composite."""
    scale = torch.tensor([0.1, 0.1, 0.25])
    w = torch.tensor([[100.0, -100.0, 0.75, 0.05, 0.7, -0.8],
                      [0.0, 0.1, -0.1, 1e-8, -1e-8, 0.35],
                      [float("nan"), 1.0, -2.0, 0.3, 0.125, -0.125]])
    v = torch.tensor([[0.0, -0.0, 50.0, -50.0, 0.3, -0.3],
                      [float("nan"), 0.0, 1.0, -1.0, 2.0, -2.0],
                      [0.5, 0.5, -0.5, 0.0, -0.0, 3.0]])
    g = torch.ones_like(w)
    y, gv, y_ref, gv_ref = _ste_pair(w, v, scale, 4, g)
    torch.testing.assert_close(y, adaround_quant(w, v, scale, 4, hard=True), rtol=0, atol=0, equal_nan=True)
    # a NaN v rounds down (v >= 0 is false) where the composite's soft - soft.detach() turns it into NaN
    finite_v = ~v.isnan()
    torch.testing.assert_close(y[finite_v], y_ref[finite_v], rtol=0, atol=1e-7, equal_nan=True)
    assert y[1, 0] == 0 and y_ref[1, 0].isnan()
    torch.testing.assert_close(gv, gv_ref, rtol=1e-5, atol=1e-7, equal_nan=True)
    assert gv[0, 0] == 0 and gv[0, 1] == 0 and gv[0, 2] == 0 and gv[0, 3] == 0  # saturated w, saturated h


@pytest.mark.parametrize("layout", ["transposed", "strided", "empty", "flat"])
def test_ste_layouts(gen, layout):
    w, scale = conv_weight(gen, shape=(16, 24))
    v = torch.randn(w.shape, generator=gen)
    if layout == "transposed":
        w, v = w.t().contiguous().t(), v.t().contiguous().t()
    elif layout == "strided":
        w, v = torch.randn(16, 48, generator=gen)[:, ::2] * 0.2, torch.randn(16, 48, generator=gen)[:, 1::2]
    elif layout == "empty":
        w, v = w[:, :0], v[:, :0]
    else:
        w, v, scale = w[0], v[0], scale[:1].expand(1)  # a 1-D weight: one output channel per element
        scale = torch.full((24,), float(scale))
    g = torch.randn(w.shape, generator=gen).t().contiguous().t() if w.dim() == 2 else torch.randn(w.shape)
    y, gv, y_ref, gv_ref = _ste_pair(w, v, scale, 4, g)
    assert y.shape == w.shape and gv.shape == w.shape
    assert torch.equal(y, adaround_quant(w.contiguous(), v.contiguous(), scale, 4, hard=True))
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-8)
    torch.testing.assert_close(gv, gv_ref, rtol=1e-5, atol=1e-7)


def test_ste_gradient_reaches_v_only(gen):
    w, scale = conv_weight(gen)
    w.requires_grad_(True)
    v = torch.randn(w.shape, generator=gen, requires_grad=True)
    adaround_quant_ste(w, v, scale, 4).sum().backward()
    assert w.grad is None and v.grad is not None and v.grad.abs().sum() > 0


def test_ste_checks_its_inputs(gen):
    w, scale = conv_weight(gen, shape=(4, 6))
    with pytest.raises(RuntimeError, match="adaround_quant_ste: .*bits"):
        adaround_quant_ste(w, torch.zeros_like(w), scale, 1)
    with pytest.raises(RuntimeError, match="adaround_quant_ste: .*v"):
        adaround_quant_ste(w, torch.zeros(4, 5), scale, 4)
    with pytest.raises(RuntimeError, match="adaround_quant_ste: scale must have 4 element"):
        adaround_quant_ste(w, torch.zeros_like(w), torch.ones(3), 4)
    with pytest.raises(TypeError, match="v must be a torch.Tensor"):
        adaround_quant_ste(w, 0.5, scale, 4)
