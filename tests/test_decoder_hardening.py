"""Decoders and lane ops on hostile input: NaN/inf head values, empty and mismatched batches, zero-size maps,
out-of-range integer arguments, meta tensors. Each gives the reference decoder's result or a clear error."""
import time

import numpy as np
import pytest
import torch

from selfocus_ext import adaround_regularizer, models
from selfocus_ext.decoders.ganet import MAX_KEYPOINTS
from selfocus_ext.ops.lanes import lane_distortion

from test_decoders import assert_same_lanes

OPS = torch.ops.selfocus
YS = torch.linspace(300.0, 580.0, 15)


def ganet_heads(h=20, w=50, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    hm = torch.full((batch, 1, h, w), -5.0)
    hm[:, 0, 2:18, 10] = 4.0  # one vertical lane of keypoints
    pts = torch.zeros(batch, 2, h, w)
    pts[:, 1, :, 10] = torch.arange(h, dtype=torch.float32) - 17.0  # every keypoint points at row 17's seed
    pts[:, 1, 17, 10] = 0.0
    intr = (torch.rand(batch, 2, h, w, generator=g) - 0.5) * 0.2
    return {"kpts_hm": hm, "pts_offset": pts, "int_offset": intr}


def test_ganet_nan_offset_is_no_point():
    """A keypoint whose y offset is NaN is dropped (it used to hang the decoder)."""
    m = models.build("ganet-s")
    out = ganet_heads()
    out["int_offset"][0, 1, 5, 10] = float("nan")
    out["int_offset"][0, 0, 6, 10] = float("inf")
    t0 = time.monotonic()
    cpp = m.decode(out)
    assert time.monotonic() - t0 < 10.0
    ref = m.decode_reference(out)
    assert int(cpp.present().sum()) == 1
    assert_same_lanes(cpp, ref, 1e-2, "ganet NaN offset")


def test_ganet_all_offsets_nan_gives_no_lane():
    m = models.build("ganet-s")
    out = ganet_heads()
    out["int_offset"].fill_(float("nan"))
    lanes = m.decode(out)
    assert int(lanes.present().sum()) == 0
    assert int(m.decode_reference(out).present().sum()) == 0


def test_ganet_candidates_are_capped_like_the_reference():
    """More candidate keypoints than the cap: both decoders keep the strongest MAX_KEYPOINTS."""
    m = models.build("ganet-s")
    g = torch.Generator().manual_seed(4)
    h, w = 80, 200
    hm = torch.rand(1, 1, h, w, generator=g) * 4 + 1  # random maxima: about a third of the cells are candidates
    pts = torch.full((1, 2, h, w), 3.0)  # no seeds but a few, so the Python reference stays quick
    pts[0, :, 40, ::20] = 0.0
    out = {"kpts_hm": hm, "pts_offset": pts, "int_offset": torch.zeros(1, 2, h, w)}
    prob = torch.sigmoid(hm)
    left = torch.nn.functional.pad(prob, (1, 0), value=-1.0)[..., :-1]
    right = torch.nn.functional.pad(prob, (0, 1), value=-1.0)[..., 1:]
    assert int(((prob >= left) & (prob >= right) & (prob > 0.4)).sum()) > MAX_KEYPOINTS
    assert_same_lanes(m.decode(out), m.decode_reference(out), 1e-2, "ganet capped")


def test_ganet_saturated_map_returns():
    """A 200x400 map of +inf logits (every cell a keypoint, every one a seed) decodes in bounded time."""
    m = models.build("ganet-s")
    out = {"kpts_hm": torch.full((1, 1, 200, 400), float("inf")), "pts_offset": torch.zeros(1, 2, 200, 400),
           "int_offset": torch.zeros(1, 2, 200, 400)}
    t0 = time.monotonic()
    lanes = m.decode(out)
    assert time.monotonic() - t0 < 60.0  # a hang guard: the uncapped clustering took minutes
    xs = lanes.xs[lanes.present()]
    ok = ~torch.isnan(xs)
    assert bool(((xs[ok] >= 0) & (xs[ok] <= 1639)).all())


@pytest.mark.parametrize("length", [2.0 ** 31, 1e30, float("inf")])
def test_laneatt_huge_length_covers_every_row(length):
    m = models.build("laneatt-s")
    n = m.anchor_rows.shape[0]
    cls = torch.zeros(1, n, 2)
    cls[0, 7, 1] = 5.0
    reg = torch.zeros(1, n, m.anchor_rows.shape[1] + 1)
    reg[0, 7, 0] = length
    out = {"cls_logits": cls, "reg": reg}
    cpp, ref = m.decode(out), m.decode_reference(out)
    assert int(cpp.present().sum()) == 1
    assert_same_lanes(cpp, ref, 1e-2, f"laneatt length {length}")
    reg[0, 7, 0] = float("nan")  # NaN covers no row: no lane
    assert int(m.decode(out).present().sum()) == 0 == int(m.decode_reference(out).present().sum())


# ---- shapes: an empty head beside non-empty ones, zero-size maps -----------------------------------------
def ganet_call(hm, pts, intr, stride=8):
    return OPS.decode_ganet(hm, pts, intr, YS, 0.25, 0.5, 270.0, 1640, 8, 0.4, 1.0, 5.0, 4.0, stride)


def test_empty_head_beside_nonempty_is_an_error():
    h = ganet_heads(batch=2)
    with pytest.raises(RuntimeError, match="same batch, got 2 and 0"):
        ganet_call(h["kpts_hm"][:0], h["pts_offset"], h["int_offset"])
    with pytest.raises(RuntimeError, match="same batch, got 0 and 2"):
        ganet_call(h["kpts_hm"], h["pts_offset"][:0], h["int_offset"])
    anchors = torch.full((3, 4), 10.0)
    with pytest.raises(RuntimeError, match="decode_laneatt: all heads must describe the same batch"):
        OPS.decode_laneatt(torch.zeros(0, 3, 2), torch.zeros(2, 3, 5), anchors, torch.arange(4.0), YS, 0.25, 0.5,
                           270.0, 1640, 400, 8, 0.5, 12.0, 2)
    with pytest.raises(RuntimeError, match="decode_bezier: all heads must describe the same batch"):
        OPS.decode_bezier(torch.zeros(2, 5), torch.zeros(0, 5, 4, 2), YS, 0.25, 0.5, 270.0, 1640, 400, 160, 8, 0.5,
                          3, 10)
    with pytest.raises(RuntimeError, match="decode_scnn: all heads must describe the same batch"):
        OPS.decode_scnn(torch.zeros(2, 5, 20, 50), torch.zeros(0, 4), torch.tensor([100], dtype=torch.int32), YS,
                        0.25, 0.5, 270.0, 1640, 400, 160, 8, 0.5, 0.3, 9)


def test_empty_batch_everywhere_is_fine():
    h = ganet_heads(batch=1)
    xs, sc = ganet_call(h["kpts_hm"][:0], h["pts_offset"][:0], h["int_offset"][:0])
    assert xs.shape == (0, 8, len(YS)) and sc.shape == (0, 8)


@pytest.mark.parametrize("hw", [(0, 50), (20, 0), (0, 0)])
def test_zero_size_maps_are_errors(hw):
    h, w = hw
    rows = torch.tensor([100], dtype=torch.int32)
    with pytest.raises(RuntimeError, match=f"decode_scnn: out must have a non-empty map, got {h} x {w}"):
        OPS.decode_scnn(torch.zeros(1, 5, h, w), torch.zeros(1, 4), rows, YS, 0.25, 0.5, 270.0, 1640, 400, 160, 8,
                        0.5, 0.3, 9)
    with pytest.raises(RuntimeError, match=f"decode_ganet: kpts_hm must have a non-empty map, got {h} x {w}"):
        ganet_call(torch.zeros(1, 1, h, w), torch.zeros(1, 2, h, w), torch.zeros(1, 2, h, w))


# ---- integer arguments beyond int ------------------------------------------------------------------------
def test_integer_arguments_out_of_range():
    h = ganet_heads()
    for stride in (2 ** 32, 0, -8):
        with pytest.raises(RuntimeError, match=f"decode_ganet: stride must be in 1..32768, got {stride}"):
            ganet_call(h["kpts_hm"], h["pts_offset"], h["int_offset"], stride=stride)
    with pytest.raises(RuntimeError, match="decode_ganet: frame_width must be in 1..32768, got 4294967296"):
        OPS.decode_ganet(h["kpts_hm"], h["pts_offset"], h["int_offset"], YS, 0.25, 0.5, 270.0, 2 ** 32, 8, 0.4, 1.0,
                         5.0, 4.0, 8)
    anchors = torch.full((3, 4), 10.0)
    with pytest.raises(RuntimeError, match="decode_laneatt: top_k must be in 0..3, got 4294967297"):
        OPS.decode_laneatt(torch.zeros(1, 3, 2), torch.zeros(1, 3, 5), anchors, torch.arange(4.0), YS, 0.25, 0.5,
                           270.0, 1640, 400, 8, 0.5, 12.0, 2 ** 32 + 1)
    with pytest.raises(RuntimeError, match="decode_laneatt: input_width must be in 1..32768"):
        OPS.decode_laneatt(torch.zeros(1, 3, 2), torch.zeros(1, 3, 5), anchors, torch.arange(4.0), YS, 0.25, 0.5,
                           270.0, 1640, 2 ** 32 + 400, 8, 0.5, 12.0, 2)
    bz = (torch.zeros(1, 5), torch.zeros(1, 5, 4, 2), YS, 0.25, 0.5, 270.0, 1640, 400, 160, 8, 0.5)
    with pytest.raises(RuntimeError, match="decode_bezier: window must be in 1..11, got 4294967297"):
        OPS.decode_bezier(*bz, 2 ** 32 + 1, 10)
    with pytest.raises(RuntimeError, match="decode_bezier: samples must be in 2..32768, got 4294967346"):
        OPS.decode_bezier(*bz, 3, 2 ** 32 + 50)
    sc = (torch.zeros(1, 5, 20, 50), torch.zeros(1, 4), torch.tensor([100], dtype=torch.int32), YS, 0.25, 0.5,
          270.0, 1640)
    with pytest.raises(RuntimeError, match="decode_scnn: input_height must be in 1..32768"):
        OPS.decode_scnn(*sc, 400, 2 ** 32 + 160, 8, 0.5, 0.3, 9)
    with pytest.raises(RuntimeError, match="decode_scnn: blur must be in 1..1023, got 4294967297"):
        OPS.decode_scnn(*sc, 400, 160, 8, 0.5, 0.3, 2 ** 32 + 1)


# ---- meta tensors: the fake kernels check devices as the kernels do --------------------------------------
def test_meta_tensor_among_decoder_inputs_is_an_error():
    h = ganet_heads()
    with pytest.raises(RuntimeError, match="decode_ganet: pts_offset is on meta but kpts_hm is on cpu"):
        ganet_call(h["kpts_hm"], h["pts_offset"].to("meta"), h["int_offset"])
    with pytest.raises(RuntimeError, match="decode_ganet: ys is on meta"):
        OPS.decode_ganet(h["kpts_hm"], h["pts_offset"], h["int_offset"], YS.to("meta"), 0.25, 0.5, 270.0, 1640, 8,
                         0.4, 1.0, 5.0, 4.0, 8)
    with pytest.raises(RuntimeError, match="decode_scnn: lane is on meta but out is on cpu"):
        OPS.decode_scnn(torch.zeros(1, 5, 20, 50), torch.zeros(1, 4, device="meta"),
                        torch.tensor([100], dtype=torch.int32), YS, 0.25, 0.5, 270.0, 1640, 400, 160, 8, 0.5, 0.3, 9)
    # all on meta: shapes only, on meta
    xs, sc = ganet_call(*(t.to("meta") for t in h.values()))
    assert xs.device.type == "meta" and xs.shape == (1, 8, len(YS))


def test_meta_tensor_in_lane_distortion_is_an_error():
    ref = torch.full((2, 3, 15), 100.0)
    with pytest.raises(RuntimeError, match="lane_distortion: pert is on meta but ref is on cpu"):
        lane_distortion(ref, ref.to("meta"), YS)
    with pytest.raises(RuntimeError, match="lane_distortion: ys is on meta"):
        lane_distortion(ref, ref, YS.to("meta"))


# ---- quantization ops: NaN and subnormal values ----------------------------------------------------------
def test_regularizer_propagates_nan():
    v = torch.tensor([float("nan"), 0.0], requires_grad=True)
    loss = adaround_regularizer(v, 2.0)
    assert torch.isnan(loss)
    loss.backward()
    assert torch.isnan(v.grad[0]) and float(v.grad[1]) == 0.0
    assert float(adaround_regularizer(torch.tensor([0.0, 0.0]), 2.0)) == pytest.approx(2.0)


def test_decoders_never_leave_the_frame_on_random_values():
    """Random heads with NaN/inf/huge values: every decoder returns finite lanes inside the frame."""
    g = np.random.default_rng(0)
    for name in ("ganet-s", "laneatt-s", "bezier-s", "scnn-s", "resa-s", "lstr-s", "condlane-s"):
        m = models.build(name)
        with torch.no_grad():
            base = m(torch.zeros(2, 3, 160, 400))
        for trial in range(4):
            out = {}
            for k, v in base.items():
                a = g.standard_normal(v.shape).astype(np.float32) * float(10.0 ** g.integers(0, 6))
                special = g.random(v.shape) < 0.05
                a[special] = g.choice(np.array([np.nan, np.inf, -np.inf, 3e38, -3e38], np.float32), special.sum())
                out[k] = torch.from_numpy(a)
            t0 = time.monotonic()
            lanes = m.decode(out)
            assert time.monotonic() - t0 < 30.0, name
            xs = lanes.xs[lanes.present()]
            ok = ~torch.isnan(xs)
            assert bool(((xs[ok] >= 0) & (xs[ok] <= m.model_input.frame.width - 1)).all()), f"{name}/{trial}"
