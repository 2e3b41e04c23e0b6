"""The modulated deformable convolution op against its plain-torch reference: values and gradients on
random inputs, offsets that leave the image, integer positions, strides, dilations, groups, non-contiguous
and empty inputs, bad arguments, opcheck, and the CUDA kernels where a GPU is present."""
import pytest
import torch

from conftest import requires_cuda
from selfocus_ext.ops import deform_conv2d, reference

CASES = [  # (B, C, H, W, Co, k, stride, padding, dilation, groups, offset_groups)
    (2, 4, 7, 9, 6, 3, 1, 1, 1, 1, 1),
    (1, 6, 8, 5, 4, 3, 2, 1, 1, 2, 3),
    (3, 4, 6, 6, 4, (1, 3), 1, (0, 1), (1, 2), 1, 2),
    (1, 2, 5, 11, 3, 1, 1, 0, 1, 1, 1),
    (2, 8, 9, 7, 8, 3, (2, 1), 2, 2, 4, 2),
]


def make(case, gen, scale=2.0):
    B, C, H, W, Co, k, stride, padding, dilation, groups, og = case
    kh, kw = (k, k) if isinstance(k, int) else k
    st = (stride, stride) if isinstance(stride, int) else stride
    pd = (padding, padding) if isinstance(padding, int) else padding
    dl = (dilation, dilation) if isinstance(dilation, int) else dilation
    Ho = (H + 2 * pd[0] - dl[0] * (kh - 1) - 1) // st[0] + 1
    Wo = (W + 2 * pd[1] - dl[1] * (kw - 1) - 1) // st[1] + 1
    x = torch.randn(B, C, H, W, generator=gen)
    off = torch.randn(B, 2 * og * kh * kw, Ho, Wo, generator=gen) * scale
    mask = torch.rand(B, og * kh * kw, Ho, Wo, generator=gen)
    w = torch.randn(Co, C // groups, kh, kw, generator=gen)
    b = torch.randn(Co, generator=gen)
    return (x, off, mask, w, b), dict(stride=st, padding=pd, dilation=dl, groups=groups, offset_groups=og)


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_reference(case, gen):
    tensors, kw = make(case, gen)
    ours = [t.clone().requires_grad_() for t in tensors]
    refs = [t.clone().requires_grad_() for t in tensors]
    out = deform_conv2d(*ours, **kw)
    want = reference.deform_conv2d(*refs, **kw)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    grad = torch.randn(out.shape, generator=gen)
    out.backward(grad)
    want.backward(grad)
    for a, b, name in zip(ours, refs, ("input", "offset", "mask", "weight", "bias")):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-4, msg=name)


def test_edge_positions(gen):
    """Offsets putting samples exactly on pixels, on the -1 / H borders and far outside; zero offsets with
    a mask of ones are an ordinary convolution."""
    (x, off, mask, w, b), kw = make(CASES[0], gen)
    torch.testing.assert_close(deform_conv2d(x, torch.zeros_like(off), torch.ones_like(mask), w, b, **kw),
                               torch.nn.functional.conv2d(x, w, b, padding=1), rtol=1e-5, atol=1e-5)
    for value in (1.0, -1.0, 7.0, -9.0, 100.0, -0.5, 0.999999):
        o = torch.full_like(off, value)
        torch.testing.assert_close(deform_conv2d(x, o, mask, w, b, **kw), reference.deform_conv2d(x, o, mask, w, b, **kw),
                                   rtol=1e-5, atol=1e-5)
    far = torch.full_like(off, 1e4)
    torch.testing.assert_close(deform_conv2d(x, far, mask, w, b, **kw), b.view(1, -1, 1, 1).expand(2, 6, 7, 9))


def test_non_contiguous_and_empty(gen):
    (x, off, mask, w, b), kw = make(CASES[0], gen)
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    offt = off.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    maskt = mask.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not (xt.is_contiguous() or offt.is_contiguous() or maskt.is_contiguous())
    torch.testing.assert_close(deform_conv2d(xt, offt, maskt, w, b, **kw),
                               reference.deform_conv2d(x, off, mask, w, b, **kw), rtol=1e-5, atol=1e-5)
    big = torch.randn(2, 8, 7, 9, generator=gen)[:, ::2]
    torch.testing.assert_close(deform_conv2d(big, off, mask, w, b, **kw),
                               reference.deform_conv2d(big.contiguous(), off, mask, w, b, **kw), rtol=1e-5, atol=1e-5)
    empty = deform_conv2d(x[:0], off[:0], mask[:0], w, b, **kw)
    assert empty.shape == (0, 6, 7, 9)
    e = [t[:0].clone().requires_grad_() if i < 3 else t.clone().requires_grad_() for i, t in enumerate((x, off, mask, w, b))]
    deform_conv2d(*e, **kw).sum().backward()
    assert e[0].grad.shape == (0, 4, 7, 9) and float(e[3].grad.abs().sum()) == 0.0


def test_bad_arguments_name_what_is_wrong(gen):
    (x, off, mask, w, b), kw = make(CASES[0], gen)
    with pytest.raises(RuntimeError, match="offset must be"):
        deform_conv2d(x, off[:, :4], mask, w, b, **kw)
    with pytest.raises(RuntimeError, match="mask must be"):
        deform_conv2d(x, off, mask[:, :2], w, b, **kw)
    with pytest.raises(RuntimeError, match="float32"):
        deform_conv2d(x.double(), off, mask, w, b, **kw)
    with pytest.raises(RuntimeError, match="groups"):
        deform_conv2d(x, off, mask, w, b, stride=1, padding=1, dilation=1, groups=3, offset_groups=1)
    with pytest.raises(RuntimeError, match="bias must be"):
        deform_conv2d(x, off, mask, w, b[:2], **kw)
    with pytest.raises(RuntimeError, match="too small"):
        deform_conv2d(x[:, :, :1, :1], off, mask, w, b, stride=1, padding=0, dilation=1, groups=1, offset_groups=1)
    with pytest.raises(RuntimeError, match="stride"):
        deform_conv2d(x, off, mask, w, b, stride=0, padding=1, dilation=1, groups=1, offset_groups=1)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        deform_conv2d(None, off, mask, w)


def test_opcheck(gen):
    (x, off, mask, w, b), kw = make(CASES[1], gen)
    args = (x.requires_grad_(), off.requires_grad_(), mask.requires_grad_(), w.requires_grad_(), b.requires_grad_(),
            list(kw["stride"]), list(kw["padding"]), list(kw["dilation"]), kw["groups"], kw["offset_groups"])
    torch.library.opcheck(torch.ops.selfocus.deform_conv2d.default, args)


@requires_cuda
@pytest.mark.parametrize("case", CASES)
def test_cuda_matches_cpu(case, gen):
    tensors, kw = make(case, gen)
    cpu = [t.clone().requires_grad_() for t in tensors]
    dev = [t.cuda().requires_grad_() for t in tensors]
    out, out_d = deform_conv2d(*cpu, **kw), deform_conv2d(*dev, **kw)
    torch.testing.assert_close(out_d.cpu(), out, rtol=1e-4, atol=1e-4)
    grad = torch.randn(out.shape, generator=gen)
    out.backward(grad)
    out_d.backward(grad.cuda())
    for a, b in zip(cpu, dev):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-3, atol=1e-3)


def test_one_dimensional_layer_without_modulation(gen):
    """GANet's 1 x k layer: zero offsets are a plain 1 x k convolution; random offsets equal the reference op
    with a unit mask; quantized at 8 bits it stays close to the float layer."""
    from selfocus_ext.layers.deform import DeformConv1d
    from selfocus_ext.quant.modules import QUANT_TYPES

    layer = DeformConv1d(6, 4, 7, 1, 3)
    x = torch.randn(2, 6, 5, 12, generator=gen)
    zero = torch.zeros(2, 14, 5, 12)
    torch.testing.assert_close(layer(x, zero), torch.nn.functional.conv2d(x, layer.weight, None, 1, (0, 3)),
                               rtol=1e-5, atol=1e-5)
    offset = torch.randn(2, 14, 5, 12, generator=gen) * 2
    want = reference.deform_conv2d(x, offset, torch.ones(2, 7, 5, 12), layer.weight, None, (1, 1), (0, 3), (1, 1), 1, 1)
    torch.testing.assert_close(layer(x, offset), want, rtol=1e-5, atol=1e-5)
    q = QUANT_TYPES[DeformConv1d](layer, 8, 8, "minmax", "minmax")
    q.weight_quantizer.calibrate(q.weight)
    q.input_quantizer.begin_sign_pass()
    q(x, offset)
    q.input_quantizer.begin_observe_pass()
    q(x, offset)
    q.input_quantizer.end_calibration()
    out = q(x, offset)
    assert out.shape == want.shape
    assert (out - want).abs().max() < 0.05 * want.abs().max()
