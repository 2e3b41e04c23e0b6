"""torch.library.opcheck on every op: schema, autograd registration, fake kernels, AOT dispatch."""
import pytest
import torch

import selfocus_ext  # noqa: F401

ops = torch.ops.selfocus


def _t(*shape, grad=False, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).requires_grad_(grad)


def cases():
    w = _t(8, 4, 3, 3, scale=0.2, seed=1)
    s_w = w.detach().abs().reshape(8, -1).amax(1) / 7
    return [
        (ops.fake_quant.default, (_t(4, 6, grad=True), torch.tensor(0.1), 4, True, None)),
        (ops.fake_quant.default, (_t(4, 6, 5, grad=True), torch.rand(6) + 0.05, 8, False, 1)),
        (ops.fake_quant_backward.default, (_t(4, 6), _t(4, 6, seed=2), torch.tensor(0.1), 4, True, None)),
        (ops.adaround_quant.default, (w, _t(8, 4, 3, 3, grad=True, seed=3), s_w, 4, False)),
        (ops.adaround_quant.default, (w, _t(8, 4, 3, 3, grad=True, seed=3), s_w, 4, True)),
        (ops.adaround_quant_backward.default, (_t(8, 4, 3, 3), w, _t(8, 4, 3, 3, seed=4), s_w, 4)),
        (ops.adaround_init.default, (w, s_w, 4)),
        (ops.adaround_regularizer.default, (_t(50, grad=True, seed=5), 4.0, True)),
        (ops.adaround_regularizer.default, (_t(50, seed=5), 4.0, False)),
        (ops.act_quant.default, (_t(3, 17, grad=True), torch.tensor(0.2, requires_grad=True), 4, True, 1.0, 0, 1.0)),
        (ops.act_quant.default, (_t(3, 17, grad=True), torch.tensor([0.2], requires_grad=True), 3, False, 0.5, 11, 0.1)),
        (ops.act_quant_backward.default, (_t(3, 17), _t(3, 17, seed=6), torch.tensor(0.2), 4, True, 0.5, 3, 1.0)),
        (ops.qdrop_mask.default, (_t(5, 9), 0.5, 42)),
        (ops.lane_distortion.default, (_t(3, 4, 12, scale=50.0) + 500, _t(3, 4, 12, scale=50.0, seed=8) + 500,
                                       torch.arange(12.0) * 10, 30.0, 1.0, 0.5)),
        (ops.lane_distortion.default, (_t(3, 4, 12, scale=50.0) + 500, _t(2, 3, 5, 12, scale=50.0, seed=9) + 500,
                                       torch.arange(12.0) * 10, 30.0, 1.0, 0.5)),
    ]


@pytest.mark.parametrize("op,args", cases(), ids=lambda c: str(c) if not isinstance(c, tuple) else "")
def test_opcheck(op, args):
    torch.library.opcheck(op, args)
