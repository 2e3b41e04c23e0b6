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
        (ops.adaround_quant_ste.default, (w, _t(8, 4, 3, 3, grad=True, seed=3), s_w, 4)),
        (ops.adaround_quant_ste.default, (w[:, :2], _t(8, 2, 3, 3, grad=True, seed=3), s_w, 2)),
        (ops.adaround_quant_slope.default, (w, _t(8, 4, 3, 3, grad=True, seed=3), s_w, 4)),
        (ops.adaround_quant_slope_backward.default, (_t(8, 4, 3, 3), _t(8, 4, 3, 3, seed=4))),
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
        (ops.max_weight_matching.default, (torch.rand(3, 5, generator=torch.Generator().manual_seed(4)),)),
        (ops.deform_conv2d.default, (_t(2, 4, 6, 7, grad=True), _t(2, 36, 6, 7, grad=True, seed=2, scale=2.0),
                                     _t(2, 18, 6, 7, seed=3).sigmoid().detach().requires_grad_(),
                                     _t(6, 2, 3, 3, grad=True, seed=4), _t(6, grad=True, seed=5), [1, 1], [1, 1],
                                     [1, 1], 2, 2)),
        (ops.deform_conv2d_backward.default, (_t(2, 6, 6, 7), _t(2, 4, 6, 7, seed=1), _t(2, 36, 6, 7, seed=2),
                                              _t(2, 18, 6, 7, seed=3).sigmoid(), _t(6, 2, 3, 3, seed=4), [1, 1],
                                              [1, 1], [1, 1], 2, 2)),
        (ops.line_nms.default, (torch.rand(30, 74, generator=torch.Generator().manual_seed(6)) * 640,
                                torch.rand(30, generator=torch.Generator().manual_seed(7)), 40.0, 4)),
    ] + decoder_cases()


def decoder_cases():
    """Each decoder on small random heads, with and without a Monte-Carlo dimension."""
    ys = torch.arange(590.0, 270.0, -10.0)
    map_args = (1640 / 400, 160 / 320, 270.0, 1640)  # sx, sy, crop_top, frame_width
    g = torch.Generator().manual_seed(7)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    anchors = torch.rand(6, 8, generator=g) * 400
    return [
        (ops.decode_ganet.default, (r(2, 1, 20, 50), r(2, 2, 20, 50), r(2, 2, 20, 50), ys, *map_args)),
        (ops.decode_ganet.default, (r(3, 2, 1, 20, 50), r(2, 2, 20, 50), r(2, 2, 20, 50), ys, *map_args)),
        (ops.decode_laneatt.default, (r(2, 6, 2), r(2, 6, 9), anchors, torch.arange(8.0) * 20, ys, *map_args, 400)),
        (ops.decode_bezier.default, (r(2, 7), r(2, 7, 4, 2).sigmoid(), ys, *map_args, 400, 160)),
        (ops.decode_bezier.default, (r(2, 7), r(3, 2, 7, 4, 2).sigmoid(), ys, *map_args, 400, 160)),
        (ops.decode_scnn.default, (r(2, 5, 20, 50), r(2, 4), torch.arange(0, 160, 10, dtype=torch.int32), ys,
                                   *map_args, 400, 160)),
        (ops.decode_lstr.default, (r(2, 7, 2) * 4, r(2, 7, 8) * 0.3, torch.linspace(0.0, 0.99, 32), ys, *map_args,
                                   400, 160, 8, 0.5)),
        (ops.decode_lstr.default, (r(2, 7, 2) * 4, r(3, 2, 7, 8) * 0.3, torch.linspace(0.0, 0.99, 32), ys, *map_args,
                                   400, 160, 8, 0.5)),
        (ops.decode_condlane.default, (r(2, 1, 10, 25) * 3, r(2, 134, 10, 25), r(2, 64, 20, 50), r(2, 20, 10, 25) * 3,
                                       ys, *map_args)),
        (ops.decode_condlane.default, (r(2, 1, 10, 25) * 3, r(3, 2, 134, 10, 25), r(2, 64, 20, 50),
                                       r(2, 20, 10, 25) * 3, ys, *map_args)),
        (ops.decode_lstr_published.default, (r(2, 7, 2) * 4, r(2, 7, 8) * 0.3, ys, 1640, 590, 4, 0.5)),
        (ops.decode_lstr_published.default, (r(2, 7, 2) * 4, r(3, 2, 7, 8) * 0.3, ys, 1640, 590, 4, 0.5)),
        (ops.decode_bezier_published.default, (r(2, 12) * 3, r(2, 12, 4, 2).sigmoid(), ys, 1640, 590, 4, 0.5)),
        (ops.decode_bezier_published.default, (r(3, 2, 12) * 3, r(2, 12, 4, 2).sigmoid(), ys, 1640, 590, 4, 0.5)),
        (ops.decode_bezier_published.default, (r(2, 12) * 3, r(3, 2, 12, 4, 2).sigmoid(), ys, 1640, 590, 4, 0.5)),
        (ops.decode_segmentation_published.default,
         (r(2, 5, 9, 28), r(2, 4), torch.tensor([71, 40, 9], dtype=torch.int32), torch.tensor([589.0, 569.0, 549.0],
                                                                                           dtype=torch.float64),
          ys, 1640, 224, 72)),
        (ops.decode_segmentation_published.default,
         (r(3, 2, 5, 9, 28), r(2, 4), torch.tensor([71, 40], dtype=torch.int32),
          torch.tensor([589.0, 569.0], dtype=torch.float64), ys, 1640, 224, 72, 4, 0.5, 0.3, 9, False, True)),
        (ops.decode_clrnet_published.default,
         (r(2, 12, 2), torch.rand(2, 12, 76, generator=g), torch.linspace(1, 0, 72),
          torch.arange(270.0, 590.0, 8.0, dtype=torch.float64) / 590, ys, 800, 1640, 590, 270.0, 4, 0.3)),
        (ops.decode_laneatt_published.default,
         (r(3, 2, 12, 2), torch.rand(2, 12, 74, generator=g) * 600, torch.linspace(1, 0, 72),
          torch.arange(590.0, dtype=torch.float64) / 590, ys, 640, 1640, 590, 4, 0.3, 50.0, 4, True)),
        (ops.decode_ufld.default, (r(2, 30, 6, 4).softmax(1), r(2, 30, 6, 4), r(2, 6, 4) + 2, ys, 1640, 590, 800)),
        (ops.decode_ufld.default, (r(3, 2, 30, 6, 4).softmax(2), r(3, 2, 30, 6, 4), r(2, 6, 4) + 2, ys, 1640, 590,
                                   800)),
        (ops.decode_ganet_published.default, (r(2, 1, 20, 50) * 3, r(2, 2, 20, 50), r(2, 2, 20, 50), ys, 400, 160,
                                              1640, 590, 270.0, 16, 0.4, 1.0, 5.0, 2)),
        (ops.decode_ganet_published.default, (r(2, 1, 20, 50) * 3, r(3, 2, 2, 20, 50), r(2, 2, 20, 50), ys, 400, 160,
                                              1640, 590, 270.0)),
        (ops.decode_condlane_published.default, (r(2, 1, 5, 12) * 3, r(2, 14, 5, 12), r(2, 4, 10, 25),
                                                 r(2, 60, 10, 2), ys, 400, 160, 1640, 590, 270.0)),
        (ops.decode_condlane_published.default, (r(3, 2, 1, 5, 12) * 3, r(2, 14, 5, 12), r(2, 4, 10, 25),
                                                 r(2, 60, 10, 2), ys, 400, 160, 1640, 590, 270.0, 8, 0.3)),
    ]


def test_every_registered_op_has_a_case():
    """An op added to the library without an opcheck case fails here (culane_match's output size depends on
    its inputs' values, which opcheck's dynamic-shape test cannot trace; tests/test_culane.py covers it)."""
    registered = {n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("selfocus::")}
    checked = {op._schema.name.split("::", 1)[1] for op, _ in cases()}
    assert registered - checked == {"culane_match"}


# The decoders' outputs are NaN-padded, and the AOT dispatch tests compare outputs without equal_nan; their
# schema, autograd registration (none: not differentiable) and fake kernels are checked.
ALL_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
DECODER_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor")


# line_nms returns as many indices as it keeps (a size that depends on the values): no AOT dynamic-shape test
DATA_DEPENDENT = {"selfocus::line_nms"}


@pytest.mark.parametrize("op,args", cases(), ids=lambda c: str(c) if not isinstance(c, tuple) else "")
def test_opcheck(op, args):
    decoder = op._schema.name.startswith("selfocus::decode_") or op._schema.name in DATA_DEPENDENT
    torch.library.opcheck(op, args, test_utils=DECODER_UTILS if decoder else ALL_UTILS)
