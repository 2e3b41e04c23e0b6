"""The published families' batched native decoders against their Python references (the implementations'
own post-processing), lane for lane and point for point, on random and adversarial head tensors, with and
without a Monte-Carlo dimension."""
import numpy as np
import pytest
import torch

from selfocus_ext.decoders import build_decoder
from selfocus_ext.models import registry
from selfocus_ext.models.published.segmentation import CULANE_INPUT
from test_published_keypoint_decoders import condlane_heads, ganet_heads

SEEDS_RANDOM = range(50)       # x 4 images each: 200 random heads
SEEDS_ADVERSARIAL = range(50)  # x 4 images each: 200 adversarial heads


def same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def assert_native_equals_reference(decoder, outputs):
    ref = decoder(outputs, backend="python")
    got = decoder(outputs)
    same(got.xs, ref.xs)
    same(got.scores, ref.scores)
    return ref


# ---- Ultra-Fast-Lane-Detection -------------------------------------------------------------------------
def ufld_heads(seed: int, batch: int = 4, cells: int = 200, rows: int = 18, lanes: int = 4, adversarial=False):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(batch, cells, rows, lanes, generator=g) * float(torch.empty(1).uniform_(0.5, 8, generator=g))
    # a peak per (row, lane) somewhere, so lanes have points
    peak = torch.randint(0, cells, (batch, 1, rows, lanes), generator=g)
    loc.scatter_add_(1, peak, torch.full(peak.shape, 6.0))
    absent = torch.randn(batch, rows, lanes, generator=g) * 4 + 4
    exist = torch.logsumexp(loc, 1) - absent
    if adversarial:
        kind = seed % 5
        if kind == 0:  # NaN cells and existence values
            loc[torch.rand(loc.shape, generator=g) < 0.01] = float("nan")
            exist[torch.rand(exist.shape, generator=g) < 0.1] = float("nan")
        elif kind == 1:  # flat rows: every cell equal (the expectation is the middle cell)
            loc[:, :, ::2] = 1.0
            exist = torch.logsumexp(loc, 1) - absent
        elif kind == 2:  # many peaks of equal height
            loc = torch.where(torch.rand(loc.shape, generator=g) < 0.2, 10.0, -10.0)
            exist = torch.logsumexp(loc, 1) - absent
        elif kind == 3:  # the absent test on its boundary: exist exactly logsumexp - max
            exist = torch.logsumexp(loc, 1) - loc.amax(1)
        else:  # saturated and infinite logits
            loc = loc * 1e6
            loc[:, 0, 0] = float("inf")
            exist = torch.where(torch.rand(exist.shape, generator=g) < 0.5, float("inf"), float("-inf"))
    return {"loc": loc, "exist": exist}


@pytest.fixture(scope="module")
def ufld():
    return build_decoder("ufld", CULANE_INPUT)


@pytest.mark.parametrize("adversarial", [False, True])
def test_ufld_native_equals_reference(ufld, adversarial):
    present = 0
    for seed in (SEEDS_ADVERSARIAL if adversarial else SEEDS_RANDOM):
        ref = assert_native_equals_reference(ufld, ufld_heads(seed, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > (100 if adversarial else 400)  # the cases decode to lanes, not only to empty sets


def test_ufld_monte_carlo_dimension(ufld):
    heads = ufld_heads(3)
    noisy = heads["loc"].unsqueeze(0) + torch.randn((6,) + tuple(heads["loc"].shape),
                                                    generator=torch.Generator().manual_seed(1))
    xs, scores = ufld({"loc": noisy, "exist": heads["exist"]})
    assert xs.shape[:2] == (6, 4)
    for k in range(6):
        ref = ufld({"loc": noisy[k], "exist": heads["exist"]}, backend="python")
        same(xs[k], ref.xs)
        same(scores[k], ref.scores)
    # the confidence head noised instead
    exist = heads["exist"].unsqueeze(0) + torch.randn(3, *heads["exist"].shape)
    xs, _ = ufld({"loc": heads["loc"], "exist": exist})
    for k in range(3):
        same(xs[k], ufld({"loc": heads["loc"], "exist": exist[k]}, backend="python").xs)


def test_ufld_model_decodes_natively_and_writes_the_reference_points():
    model = registry.build("ufld-r18")
    assert model.supports_monte_carlo
    heads = ufld_heads(7)
    same(model.decode(heads).xs, model.decode_reference(heads).xs)
    images, _ = model.decode_points(heads)
    assert any(len(lanes) for lanes in images)
    for lanes in images:
        for lane in lanes:
            assert lane.shape[1] == 2 and np.all(lane == np.round(lane))


def test_ufld_op_checks_its_inputs():
    op = torch.ops.selfocus.decode_ufld
    ys = torch.arange(270.0, 590.0, 10.0)
    prob, loc, exist = torch.rand(2, 10, 5, 4), torch.randn(2, 10, 5, 4), torch.randn(2, 5, 4)
    kw = dict(ys=ys, frame_width=1640, frame_height=590, input_width=800)
    assert op(prob, loc, exist, **kw)[0].shape == (2, 4, len(ys))
    with pytest.raises(RuntimeError, match="decode_ufld: prob must have loc's"):
        op(prob[:, :9], loc, exist, **kw)
    with pytest.raises(RuntimeError, match="decode_ufld: exist must be"):
        op(prob, loc, exist[:, :4], **kw)
    with pytest.raises(RuntimeError, match="decode_ufld: loc must have 2..4096 cells"):
        op(prob[:, :1], loc[:, :1], exist, **kw)
    with pytest.raises(RuntimeError, match="decode_ufld: input_width must be in"):
        op(prob, loc, exist, **{**kw, "input_width": 1})
    with pytest.raises(RuntimeError, match="decode_ufld: all heads must describe the same batch"):
        op(prob, loc, exist[:1], **kw)
    empty = op(prob[:0], loc[:0], exist[:0], **kw)
    assert empty[0].shape == (0, 4, len(ys))
    torch.library.opcheck(op.default, (prob, loc, exist, ys, 1640, 590, 800, 4, 20),
                          test_utils=("test_schema", "test_faketensor"))


# ---- noise-score curves of a published model on the batched path ---------------------------------------
@pytest.mark.parametrize("name", ["ufld-r18", "lstr-r18s", "bezier-r18", "scnn-r18", "resa-r50-official", "clrnet-r18",
                                  "laneatt-r18", "condlane-r18", "ganet-r18"])
def test_published_curves_batched_equal_per_copy_and_chunked(small, name, monkeypatch):
    """The curve builder on a published model: one batched call per chunk of noisy copies gives the curves of
    one call per copy, chunked or not. The model's forward returns designed heads (random weights decode no
    lanes at these thresholds), so the noise has lanes to move."""
    from selfocus_ext.recon.curves import build_curves

    small(name)
    model = registry.build(name)
    designed = {"ufld-r18": ufld_heads, "lstr-r18s": lstr_heads, "bezier-r18": bezier_heads,
                "clrnet-r18": clrnet_heads}.get(name)
    w8, h8 = model.model_input.size[0] // 8, model.model_input.size[1] // 8
    if name == "laneatt-r18":
        designed = lambda seed, batch: laneatt_heads(seed, model.anchors.shape[0], batch)  # noqa: E731
    if name == "condlane-r18":
        real = model(torch.zeros(1, 3, model.model_input.size[1], model.model_input.size[0]))
        (h16, w16), (fh, fw) = real["hm"].shape[-2:], real["features"].shape[-2:]
        designed = lambda seed, batch: condlane_heads(seed, batch, 64, h16, w16, h8=fh, w8=fw)  # noqa: E731
    if name == "ganet-r18":
        # two key points a row: a lane needs more than 10 points, the small map has 9 rows
        designed = lambda seed, batch: ganet_heads(seed, batch, h8, w8, per_row=2)  # noqa: E731
    if designed is None:  # the segmentation maps at the model's feature size (stride 8)
        designed = lambda seed, batch: segmentation_heads(seed, batch, h8, w8)  # noqa: E731
    monkeypatch.setattr(model, "forward", lambda x: designed(1, batch=len(x)))
    w, h = model.model_input.size
    images = torch.rand(3, 3, h, w, generator=torch.Generator().manual_seed(2))
    batched = build_curves(model, images, levels=3, reruns=4, seed=3, progress=False)
    chunked = build_curves(model, images, levels=3, reruns=4, seed=3, progress=False, memory=1)
    monkeypatch.setattr(type(model), "supports_monte_carlo", False)
    per_copy = build_curves(model, images, levels=3, reruns=4, seed=3, progress=False)
    assert set(batched) == {spec.name for spec in model.heads}
    for head in batched:
        for other in (chunked, per_copy):
            assert other[head].levels == batched[head].levels
            torch.testing.assert_close(torch.tensor(other[head].scores, dtype=torch.float64),
                                       torch.tensor(batched[head].scores, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert all(batched[head].scores[-1] > 0 for head in batched)  # the noise moves the lanes


# ---- pytorch-auto-drive's LSTR and BezierLaneNet ---------------------------------------------------------
def lstr_heads(seed: int, batch: int = 4, queries: int = 7, adversarial=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, queries, 2, generator=g) * 4
    logits[..., 1] += 3  # most queries above the 0.95 threshold: the pruning to 4 lanes is exercised
    lower = torch.rand(batch, queries, 1, generator=g) * 0.5
    upper = lower + 0.3 + torch.rand(batch, queries, 1, generator=g) * 0.6
    k, f = torch.randn(batch, queries, 1, generator=g) * 0.01, torch.rand(batch, queries, 1, generator=g) * 0.2 - 0.4
    m, n = torch.randn(batch, queries, 1, generator=g) * 0.1, torch.rand(batch, queries, 1, generator=g)
    b, b3 = torch.randn(batch, queries, 1, generator=g) * 0.3, torch.randn(batch, queries, 1, generator=g) * 0.1
    curves = torch.cat([lower, upper, k, f, m, n, b, b3], -1)
    if adversarial:
        kind = seed % 4
        if kind == 0:  # NaN logits and curve values
            logits[torch.rand(logits.shape, generator=g) < 0.1] = float("nan")
            curves[torch.rand(curves.shape, generator=g) < 0.05] = float("nan")
        elif kind == 1:  # every probability equal: ties at the pruning
            logits = torch.zeros_like(logits)
            logits[..., 1] = 5.0
        elif kind == 2:  # poles on the rows (f'' on a sampled row) and infinite coefficients
            curves[..., 3] = 1.0 - 20 / 590 * torch.randint(0, 18, (batch, queries), generator=g)
            curves[..., 2][torch.rand(batch, queries, generator=g) < 0.2] = float("inf")
        else:  # flat curves far outside the image, and huge values
            curves[..., 5] = torch.where(torch.rand(batch, queries, generator=g) < 0.5, -5.0, 1e30)
    return {"logits": logits, "curves": curves}


def bezier_heads(seed: int, batch: int = 4, queries: int = 50, adversarial=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, queries, generator=g) * 3 + 2
    curves = torch.rand(batch, queries, 4, 2, generator=g) * 1.2 - 0.1
    if adversarial:
        kind = seed % 4
        if kind == 0:  # NaN logits (a NaN in a window is its maximum) and NaN control points
            logits[torch.rand(logits.shape, generator=g) < 0.1] = float("nan")
            curves[torch.rand(curves.shape, generator=g) < 0.05] = float("nan")
        elif kind == 1:  # plateaus: equal probabilities, the first of a window wins
            logits = torch.full_like(logits, 8.0)
            logits[:, ::7] = 9.0
        elif kind == 2:  # many peaks, saturated probabilities (exactly 1 in float32)
            logits = torch.where(torch.rand(logits.shape, generator=g) < 0.5, 40.0, -40.0)
        else:  # curves far outside the frame, and infinite control points
            curves = curves * 1e6
            curves[:, ::5, 0, 0] = float("inf")
    return {"logits": logits, "curves": curves}


@pytest.fixture(scope="module")
def pad_lstr():
    return build_decoder("pad-lstr", CULANE_INPUT)


@pytest.fixture(scope="module")
def pad_bezier():
    return build_decoder("pad-bezier", CULANE_INPUT)


@pytest.mark.parametrize("family", ["pad_lstr", "pad_bezier"])
@pytest.mark.parametrize("adversarial", [False, True])
def test_curve_families_native_equal_reference(request, family, adversarial):
    decoder = request.getfixturevalue(family)
    heads = lstr_heads if family == "pad_lstr" else bezier_heads
    present = 0
    for seed in (SEEDS_ADVERSARIAL if adversarial else SEEDS_RANDOM):
        ref = assert_native_equals_reference(decoder, heads(seed, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > (100 if adversarial else 300)


@pytest.mark.parametrize("family", ["pad_lstr", "pad_bezier"])
def test_curve_families_monte_carlo_dimension(request, family):
    decoder = request.getfixturevalue(family)
    heads = (lstr_heads if family == "pad_lstr" else bezier_heads)(5)
    gen = torch.Generator().manual_seed(3)
    for key in ("curves", "logits"):
        noisy = heads[key].unsqueeze(0) + 0.05 * torch.randn((5,) + tuple(heads[key].shape), generator=gen)
        xs, scores = decoder({**heads, key: noisy})
        assert xs.shape[:2] == (5, 4)
        for k in range(5):
            ref = decoder({**heads, key: noisy[k]}, backend="python")
            same(xs[k], ref.xs)
            same(scores[k], ref.scores)


@pytest.mark.parametrize("family", ["pad_lstr", "pad_bezier"])
def test_curve_family_settings_reach_both_backends(request, family):
    decoder = request.getfixturevalue(family)
    heads = (lstr_heads if family == "pad_lstr" else bezier_heads)(11)
    for settings in ({"threshold": 0.5}, {"max_lanes": 2}, {"max_lanes": 6},
                     {"gap": 10, "points": 30} if family == "pad_lstr" else {"window": 0, "samples": 20}):
        ref = decoder(heads, backend="python", **settings)
        got = decoder(heads, **settings)
        same(got.xs, ref.xs)
        same(got.scores, ref.scores)


def test_curve_family_ops_check_their_inputs():
    ys = torch.arange(270.0, 590.0, 10.0)
    lstr, bezier = torch.ops.selfocus.decode_lstr_published, torch.ops.selfocus.decode_bezier_published
    with pytest.raises(RuntimeError, match=r"decode_lstr_published: expected logits \[.., Q, 2\] and curves"):
        lstr(torch.randn(2, 7, 2), torch.randn(2, 7, 6), ys, 1640, 590)
    with pytest.raises(RuntimeError, match="decode_lstr_published: logits must be floating point"):
        lstr(torch.randn(2, 7, 3), torch.randn(2, 7, 8), ys, 1640, 590)
    with pytest.raises(RuntimeError, match="decode_bezier_published: window must be 0"):
        bezier(torch.randn(2, 9), torch.rand(2, 9, 4, 2), ys, 1640, 590, window=4)
    with pytest.raises(RuntimeError, match=r"decode_bezier_published: expected logits \[.., Q\]"):
        bezier(torch.randn(2, 9), torch.rand(2, 8, 4, 2), ys, 1640, 590)
    with pytest.raises(RuntimeError, match="decode_bezier_published: frame_height must be in"):
        bezier(torch.randn(2, 9), torch.rand(2, 9, 4, 2), ys, 1640, 0)
    assert lstr(torch.randn(0, 7, 2), torch.randn(0, 7, 8), ys, 1640, 590)[0].shape == (0, 4, len(ys))
    assert bezier(torch.randn(0, 9), torch.rand(0, 9, 4, 2), ys, 1640, 590)[0].shape == (0, 4, len(ys))


# ---- the published segmentation post-processings ----------------------------------------------------------
def segmentation_heads(seed: int, batch: int = 2, h: int = 36, w: int = 100, adversarial=False):
    """Lane maps with a ridge per slot (a straight lane), background flat, existence mostly above 0.5."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    out = torch.randn(batch, 5, h, w, generator=g) * 0.5
    for b in range(batch):
        for s in range(4):
            x0, slope = float(torch.rand(1, generator=g)) * w, float(torch.randn(1, generator=g)) * 1.5
            out[b, s + 1] += 6.0 * torch.exp(-((xs - (x0 + slope * (ys - h))) ** 2) / 4.0)
    lane = torch.randn(batch, 4, generator=g) * 2 + 1.5
    if adversarial:
        kind = seed % 4
        if kind == 0:  # NaN logits in the maps and the existence
            out[torch.rand(out.shape, generator=g) < 0.002] = float("nan")
            lane[torch.rand(lane.shape, generator=g) < 0.2] = float("nan")
        elif kind == 1:  # flat maps: every column equal, the first arg-max decides
            out[:, 1:] = 3.0
        elif kind == 2:  # saturated maps (probabilities exactly 1 and 0) and tied existences
            out = out * 1e4
            lane[:] = 3.0
        else:  # many peaks per row
            out[:, 1:] += torch.where(torch.rand(batch, 4, h, w, generator=g) < 0.1, 8.0, 0.0)
    return {"out": out, "lane": lane}


@pytest.fixture(scope="module")
def pad_segmentation():
    return build_decoder("pad-segmentation", CULANE_INPUT)


@pytest.fixture(scope="module")
def resa_official():
    from selfocus_ext.models.published.segmentation import RESA_INPUT

    return build_decoder("resa-official", RESA_INPUT)


@pytest.mark.parametrize("family", ["pad_segmentation", "resa_official"])
@pytest.mark.parametrize("adversarial", [False, True])
def test_segmentation_families_native_equal_reference(request, family, adversarial):
    decoder = request.getfixturevalue(family)
    present = 0
    for seed in (SEEDS_ADVERSARIAL if adversarial else SEEDS_RANDOM)[:25]:  # x 2 images x 4 slots
        ref = assert_native_equals_reference(decoder, segmentation_heads(seed, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > (40 if adversarial else 100)


@pytest.mark.parametrize("family", ["pad_segmentation", "resa_official"])
def test_segmentation_families_monte_carlo_dimension(request, family):
    decoder = request.getfixturevalue(family)
    heads = segmentation_heads(4)
    gen = torch.Generator().manual_seed(3)
    for key in ("out", "lane"):
        noisy = heads[key].unsqueeze(0) + 0.5 * torch.randn((3,) + tuple(heads[key].shape), generator=gen)
        xs, scores = decoder({**heads, key: noisy})
        assert xs.shape[:2] == (3, 2)
        for k in range(3):
            ref = decoder({**heads, key: noisy[k]}, backend="python")
            same(xs[k], ref.xs)
            same(scores[k], ref.scores)


def test_segmentation_settings_reach_both_backends(pad_segmentation):
    heads = segmentation_heads(9)
    for settings in ({"exist_threshold": 0.9}, {"point_threshold": 0.6}, {"max_lanes": 2}, {"gap": 10, "points": 30}):
        ref = pad_segmentation(heads, backend="python", **settings)
        got = pad_segmentation(heads, **settings)
        same(got.xs, ref.xs)
        same(got.scores, ref.scores)


def test_segmentation_op_checks_its_inputs():
    op = torch.ops.selfocus.decode_segmentation_published
    ys = torch.arange(270.0, 590.0, 10.0)
    rows, frame = torch.tensor([287, 250], dtype=torch.int32), torch.tensor([589.0, 569.0], dtype=torch.float64)
    out, lane = torch.randn(1, 5, 36, 100), torch.randn(1, 4)
    kw = dict(frame_width=1640, input_width=800, input_height=288)
    assert op(out, lane, rows, frame, ys, **kw)[0].shape == (1, 4, len(ys))
    with pytest.raises(RuntimeError, match="lane must have one logit per lane channel"):
        op(out, lane[:, :3], rows, frame, ys, **kw)
    with pytest.raises(RuntimeError, match="frame_rows must be float64"):
        op(out, lane, rows, frame.float(), ys, **kw)
    with pytest.raises(RuntimeError, match="sample row 300 outside the input height 288"):
        op(out, lane, torch.tensor([300, 1], dtype=torch.int32), frame, ys, **kw)
    with pytest.raises(RuntimeError, match="blur must be odd"):
        op(out, lane, rows, frame, ys, **kw, blur=4)
    assert op(out[:0], lane[:0], rows, frame, ys, **kw)[0].shape == (0, 4, len(ys))


# ---- the published anchor-based post-processings (CLRNet, LaneATT in both layouts) -----------------------
def clrnet_heads(seed: int, batch: int = 4, priors: int = 192, points: int = 72, adversarial=False):
    """Priors clustered around a few lanes (so the NMS has duplicates to remove), lines in normalised x."""
    g = torch.Generator().manual_seed(seed)
    lanes_per_image = 6
    which = torch.randint(0, lanes_per_image, (batch, priors), generator=g)
    x0 = torch.rand(batch, lanes_per_image, generator=g).gather(1, which) + 0.01 * torch.randn(batch, priors, generator=g)
    slope = (torch.rand(batch, lanes_per_image, generator=g) - 0.5).gather(1, which)
    t = torch.arange(points, dtype=torch.float32) / (points - 1)
    xs = x0[..., None] + slope[..., None] * t + 0.002 * torch.randn(batch, priors, points, generator=g)
    start = torch.rand(batch, priors, 1, generator=g) * 0.5
    head = torch.cat([start, x0[..., None], torch.rand(batch, priors, 1, generator=g),
                      0.3 + 0.7 * torch.rand(batch, priors, 1, generator=g)], -1)
    lanes = torch.cat([head, xs], -1)
    cls = torch.randn(batch, priors, 2, generator=g) * 2
    if adversarial:
        kind = seed % 4
        if kind == 0:  # NaN scores and x values, and lanes with no finite start or length
            cls[torch.rand(cls.shape, generator=g) < 0.05] = float("nan")
            lanes[..., 4:][torch.rand(batch, priors, points, generator=g) < 0.05] = float("nan")
            lanes[:, ::17, 0] = float("nan")
            lanes[:, 1::17, 3] = float("inf")
        elif kind == 1:  # equal scores everywhere: the NMS order is the index order
            cls = torch.zeros_like(cls)
            cls[..., 1] = 1.0
        elif kind == 2:  # lengths beyond the rows and below zero; starts outside [0, 1]
            lanes[..., 3] = torch.randn(batch, priors, generator=g) * 3
            lanes[..., 0] = torch.randn(batch, priors, generator=g)
        else:  # short lanes (2-3 rows: the line and the parabola of the spline) and far-away x
            lanes[..., 0] = 0.95 + 0.04 * torch.rand(batch, priors, generator=g)
            lanes[..., 3] = torch.randint(1, 4, (batch, priors), generator=g) / (points - 1)
            lanes[:, ::3, 4:] += 5.0
    return {"cls": cls, "lanes": lanes}


def laneatt_heads(seed: int, anchors: int, batch: int = 3, points: int = 72, adversarial=False):
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(batch, anchors, 2, generator=g) * 2
    cls[..., 1] -= 2.0  # a few per cent above 0.5
    drift = torch.cumsum(torch.randn(batch, anchors, points, generator=g), -1)
    reg = torch.cat([torch.randn(batch, anchors, 1, generator=g) * 10 + 30, drift], -1)
    if adversarial:
        kind = seed % 4
        if kind == 0:
            cls[torch.rand(cls.shape, generator=g) < 0.05] = float("nan")
            reg[..., 1:][torch.rand(batch, anchors, points, generator=g) < 0.05] = float("nan")
            reg[:, ::29, 0] = float("nan")
        elif kind == 1:
            cls = torch.zeros_like(cls)
            cls[..., 1] = 1.0
        elif kind == 2:  # lengths far beyond the rows and negative
            reg[..., 0] = torch.randn(batch, anchors, generator=g) * 200
        else:  # x offsets pushing lanes out of the image
            reg[..., 1:] *= 40
    return {"cls": cls, "reg": reg}


@pytest.fixture(scope="module")
def clrnet():
    from selfocus_ext.models.published.clrnet import CLRNET_INPUT

    return build_decoder("clrnet", CLRNET_INPUT)


@pytest.fixture(scope="module", params=["pad", "official"])
def laneatt(request):
    model = registry.build("laneatt-r18")
    inputs = model.decoder_inputs()
    if request.param == "official":
        inputs = dict(inputs, length_adds_start_x=0.0, official=True)
    return build_decoder("laneatt-published", model.model_input, **inputs)


def assert_close_lanes(decoder, outputs):
    """Native against reference where the points come from a spline: scipy's FITPACK and the native
    solve give the same curve to float64 rounding, so the float32 rows agree exactly but for a value that
    sits on a float32 rounding boundary (allowed: 1e-3 px)."""
    ref = decoder(outputs, backend="python")
    got = decoder(outputs)
    torch.testing.assert_close(got.xs, ref.xs, rtol=0, atol=1e-3, equal_nan=True)
    same(got.scores, ref.scores)
    return ref


@pytest.mark.parametrize("adversarial", [False, True])
def test_clrnet_native_equals_reference(clrnet, adversarial):
    present = 0
    for seed in (SEEDS_ADVERSARIAL if adversarial else SEEDS_RANDOM):
        ref = assert_close_lanes(clrnet, clrnet_heads(seed, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > (100 if adversarial else 300)


@pytest.mark.parametrize("adversarial", [False, True])
def test_laneatt_native_equals_reference(laneatt, adversarial):
    present = 0
    anchors = laneatt.anchors.shape[0]
    for seed in (SEEDS_ADVERSARIAL if adversarial else SEEDS_RANDOM)[:34]:  # x 3 images: 102 each
        compare = assert_close_lanes if laneatt.official else assert_native_equals_reference
        ref = compare(laneatt, laneatt_heads(seed, anchors, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > 60


def test_anchor_families_monte_carlo_dimension(clrnet, laneatt):
    for decoder, heads, keys in ((clrnet, clrnet_heads(5), ("cls", "lanes")),
                                 (laneatt, laneatt_heads(5, laneatt.anchors.shape[0]), ("cls", "reg"))):
        gen = torch.Generator().manual_seed(3)
        for key in keys:
            noisy = heads[key].unsqueeze(0) + 0.01 * torch.randn((3,) + tuple(heads[key].shape), generator=gen)
            xs, scores = decoder({**heads, key: noisy})
            for k in range(3):
                ref = decoder({**heads, key: noisy[k]}, backend="python")
                torch.testing.assert_close(xs[k], ref.xs, rtol=0, atol=1e-3, equal_nan=True)
                same(scores[k], ref.scores)


def test_anchor_ops_check_their_inputs():
    ys = torch.arange(270.0, 590.0, 10.0)
    op = torch.ops.selfocus.decode_clrnet_published
    prior, samples = torch.linspace(1, 0, 72), torch.arange(270.0, 590.0, 8.0, dtype=torch.float64) / 590
    cls, lanes = torch.randn(2, 10, 2), torch.rand(2, 10, 76)
    kw = dict(input_width=800, frame_width=1640, frame_height=590, crop_top=270.0)
    assert op(cls, lanes, prior, samples, ys, **kw)[0].shape == (2, 4, len(ys))
    with pytest.raises(RuntimeError, match="prior_ys must be float32 \\[72\\]"):
        op(cls, lanes, prior[:70], samples, ys, **kw)
    with pytest.raises(RuntimeError, match="sample_ys must be increasing"):
        op(cls, lanes, prior, samples.flip(0), ys, **kw)
    with pytest.raises(RuntimeError, match="cls must be floating point"):
        op(cls[..., :1], lanes, prior, samples, ys, **kw)
    with pytest.raises(RuntimeError, match="expected cls"):
        op(cls, lanes[:, :9], prior, samples, ys, **kw)
    assert op(cls[:0], lanes[:0], prior, samples, ys, **kw)[0].shape == (0, 4, len(ys))
