"""The published keypoint families' batched native decoders (CondLaneNet's and GANet's official
post-processing) against their Python references, lane for lane and point for point, on random and
adversarial head tensors, with and without a Monte-Carlo dimension; the op's input checks."""
import pytest
import torch

from selfocus_ext.decoders import build_decoder
from selfocus_ext.models import registry
from selfocus_ext.models.published.condlane import MMDET_CULANE_INPUT

SEEDS = range(50)  # x 4 images each: 200 heads per kind


def same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def assert_native_equals_reference(decoder, outputs, **kw):
    ref = decoder(outputs, backend="python", **kw)
    got = decoder(outputs, **kw)
    same(got.xs, ref.xs)
    same(got.scores, ref.scores)
    return ref


def _adversarial(g, t: torch.Tensor, kind: int) -> torch.Tensor:
    """NaN cells, infinite cells, or huge values in a head."""
    t = t.clone()
    mask = torch.rand(t.shape, generator=g) < 0.02
    if kind == 0:
        t[mask] = float("nan")
    elif kind == 1:
        t[mask] = float("inf") if float(torch.rand(1, generator=g)) < 0.5 else float("-inf")
    else:
        t[mask] = t[mask] * 1e30
    return t


# ---- GANet -------------------------------------------------------------------------------------------------
def ganet_heads(seed: int, batch: int = 4, h: int = 40, w: int = 100, adversarial=False, per_row: int = 1):
    """Lanes of key points (``per_row`` a row, two cells apart), each point's offset aiming at its lane's
    bottom (start) point, in background noise; adversarial cases add NaN/infinite/huge cells, flat or saturated heat maps, many equal peaks."""
    g = torch.Generator().manual_seed(seed)
    hm = torch.randn(batch, 1, h, w, generator=g) * 1.5 - 2
    offset = torch.randn(batch, 2, h, w, generator=g) * 3
    error = torch.rand(batch, 2, h, w, generator=g) - 0.5
    for b in range(batch):
        for _ in range(int(torch.randint(1, 6, (1,), generator=g))):
            x0 = float(torch.rand(1, generator=g)) * (w - 1)
            slope = float(torch.randn(1, generator=g)) * 0.6
            for r in range(h):
                for col in [int(round(x0 + slope * (h - 1 - r))) + 2 * j for j in range(per_row)]:
                    if not 0 <= col < w:
                        continue
                    hm[b, 0, r, col] = 2 + float(torch.rand(1, generator=g))
                    jitter = torch.randn(2, generator=g) * 0.7
                    offset[b, 0, r, col] = x0 - col + float(jitter[0])
                    offset[b, 1, r, col] = (h - 1 - r) + float(jitter[1])
    if adversarial:
        kind = seed % 6
        if kind < 3:
            heads = [hm, offset, error]
            j = seed % 3
            heads[j] = _adversarial(g, heads[j], kind)
            hm, offset, error = heads
        elif kind == 3:  # flat rows: every cell of a row equal (each is its row's 1x3 maximum)
            hm[:, :, ::3] = 1.0
        elif kind == 4:  # saturated: the clamp makes neighbours equal
            hm = hm * 1e3
        else:  # many equal peaks
            hm = torch.where(torch.rand(hm.shape, generator=g) < 0.3, 5.0, -5.0)
    return {"kpts_hm": hm, "pts_offset": offset, "int_offset": error}


@pytest.fixture(scope="module")
def ganet():
    return build_decoder("ganet-published", MMDET_CULANE_INPUT)


@pytest.mark.parametrize("adversarial", [False, True])
def test_ganet_native_equals_reference(ganet, adversarial):
    present = 0
    for seed in SEEDS:
        ref = assert_native_equals_reference(ganet, ganet_heads(seed, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > (150 if adversarial else 300)  # the cases decode to lanes, not only to empty sets


def test_ganet_settings_reach_both_backends(ganet):
    heads = ganet_heads(5)
    for kw in (dict(threshold=0.7), dict(root_threshold=3.0), dict(cluster_distance=2.0), dict(min_points=3),
               dict(max_lanes=2)):
        ref = assert_native_equals_reference(ganet, heads, **kw)
        assert not torch.equal(ref.xs.nan_to_num(-1), ganet(heads, backend="python").xs.nan_to_num(-1)) or \
            kw.get("max_lanes") == 2


# ---- CondLaneNet -------------------------------------------------------------------------------------------
def condlane_heads(seed: int, batch: int = 4, C: int = 8, h16: int = 10, w16: int = 25, adversarial=False,
                   h8: int = 0, w8: int = 0):
    """Random proposal maps, dynamic-kernel parameters, features and row ranges (by default at half the real
    map size, the features at twice the proposal grid); adversarial cases add NaN/infinite/huge cells to one
    head, flat or saturated proposal maps, many peaks."""
    g = torch.Generator().manual_seed(seed)
    h8, w8 = h8 or 2 * h16, w8 or 2 * w16
    hm = torch.randn(batch, 1, h16, w16, generator=g) * 2
    params = torch.randn(batch, 2 * (C + 3), h16, w16, generator=g)
    features = torch.randn(batch, C, h8, w8, generator=g) * 2
    rng = torch.randn(batch, h16 * w16, h8, 2, generator=g)
    if adversarial:
        kind = seed % 6
        if kind < 3:
            heads = [hm, params, features, rng]
            j = seed % 4
            heads[j] = _adversarial(g, heads[j], kind)
            hm, params, features, rng = heads
        elif kind == 3:  # flat: every cell a 3x3 maximum
            hm = torch.ones_like(hm)
        elif kind == 4:  # saturated: the clamp makes neighbours equal
            hm = hm * 1e3
        else:  # many equal peaks, ties in the row ranges
            hm = torch.where(torch.rand(hm.shape, generator=g) < 0.3, 5.0, -5.0)
            rng = torch.where(torch.rand(rng.shape, generator=g) < 0.5, 1.0, rng.round())
    return {"hm": hm, "params": params, "features": features, "range": rng}


@pytest.fixture(scope="module")
def condlane():
    return build_decoder("condlane-published", MMDET_CULANE_INPUT)


@pytest.mark.parametrize("adversarial", [False, True])
def test_condlane_native_equals_reference(condlane, adversarial):
    present = 0
    for seed in SEEDS:
        ref = assert_native_equals_reference(condlane, condlane_heads(seed, adversarial=adversarial))
        present += int((~ref.scores.isnan()).sum())
    assert present > (150 if adversarial else 300)


def test_condlane_settings_reach_both_backends(condlane):
    heads = condlane_heads(5)
    base = condlane(heads, backend="python")
    for kw in (dict(threshold=0.9), dict(group_distance=1.0), dict(max_lanes=2)):
        ref = assert_native_equals_reference(condlane, heads, **kw)
        assert not torch.equal(ref.xs.nan_to_num(-1), base.xs.nan_to_num(-1))


# ---- both: the Monte-Carlo dimension, the models, the op checks ------------------------------------------------
@pytest.mark.parametrize("family", ["ganet", "condlane"])
def test_monte_carlo_dimension_on_each_head(request, family):
    decoder = request.getfixturevalue(family)
    heads = (ganet_heads if family == "ganet" else condlane_heads)(3, batch=2)
    g = torch.Generator().manual_seed(1)
    for name in heads:
        noisy = heads[name].unsqueeze(0) + 0.5 * torch.randn((3,) + tuple(heads[name].shape), generator=g)
        xs, scores = decoder({**heads, name: noisy})
        assert xs.shape[:2] == (3, 2)
        for k in range(3):
            ref = decoder({**heads, name: noisy[k]}, backend="python")
            same(xs[k], ref.xs)
            same(scores[k], ref.scores)


@pytest.mark.parametrize("name,make", [("ganet-r18", ganet_heads), ("condlane-r18", condlane_heads)])
def test_models_decode_natively_and_write_the_reference_points(name, make):
    model = registry.build(name)
    assert model.supports_monte_carlo
    heads = make(7)
    same(model.decode(heads).xs, model.decode_reference(heads).xs)
    images, _ = model.decode_points(heads)
    assert any(len(lanes) for lanes in images)


def test_ganet_op_checks_its_inputs():
    op = torch.ops.selfocus.decode_ganet_published
    ys = torch.arange(270.0, 590.0, 10.0)
    hm, off, err = torch.randn(2, 1, 8, 20), torch.randn(2, 2, 8, 20), torch.randn(2, 2, 8, 20)
    kw = dict(ys=ys, input_width=160, input_height=64, frame_width=1640, frame_height=590, crop_top=270.0)
    assert op(hm, off, err, **kw)[0].shape == (2, 16, len(ys))
    with pytest.raises(RuntimeError, match="decode_ganet_published: expected kpts_hm"):
        op(hm.expand(2, 2, 8, 20), off, err, **kw)
    with pytest.raises(RuntimeError, match="decode_ganet_published: heads must share the grid size"):
        op(hm, off[..., :10], err, **kw)
    with pytest.raises(RuntimeError, match="decode_ganet_published: crop_top must be in"):
        op(hm, off, err, **{**kw, "crop_top": 600.0})
    with pytest.raises(RuntimeError, match="decode_ganet_published: cluster_distance must be finite"):
        op(hm, off, err, **kw, cluster_distance=float("nan"))
    with pytest.raises(RuntimeError, match="decode_ganet_published: all heads must describe the same batch"):
        op(hm, off[:1], err, **kw)
    with pytest.raises(RuntimeError, match="decode_ganet_published: input_width"):
        op(hm, off, err, **{**kw, "input_width": 10})
    assert op(hm[:0], off[:0], err[:0], **kw)[0].shape == (0, 16, len(ys))
    torch.library.opcheck(op.default, (hm, off, err, ys, 160, 64, 1640, 590, 270.0),
                          test_utils=("test_schema", "test_faketensor"))


def test_condlane_op_checks_its_inputs():
    op = torch.ops.selfocus.decode_condlane_published
    ys = torch.arange(270.0, 590.0, 10.0)
    heads = condlane_heads(0, batch=2, C=4, h16=4, w16=6)
    hm, params, features, rng = heads["hm"], heads["params"], heads["features"], heads["range"]
    kw = dict(ys=ys, input_width=96, input_height=64, frame_width=1640, frame_height=590, crop_top=270.0)
    assert op(hm, params, features, rng, **kw)[0].shape == (2, 16, len(ys))
    with pytest.raises(RuntimeError, match=r"decode_condlane_published: expected params \[.., 2 \(C \+ 3\)"):
        op(hm, params[:, :-1], features, rng, **kw)
    with pytest.raises(RuntimeError, match="decode_condlane_published: expected range"):
        op(hm, params, features, rng[:, :-1], **kw)
    with pytest.raises(RuntimeError, match="decode_condlane_published: expected hm"):
        op(params, params, features, rng, **kw)
    with pytest.raises(RuntimeError, match="decode_condlane_published: group_distance must be finite"):
        op(hm, params, features, rng, **kw, group_distance=-1.0)
    with pytest.raises(RuntimeError, match="decode_condlane_published: Monte-Carlo dimensions differ"):
        op(hm.expand(3, *hm.shape), params.expand(2, *params.shape), features, rng, **kw)
    with pytest.raises(RuntimeError, match="decode_condlane_published: hm must be a floating-point tensor"):
        op(hm.long(), params, features, rng, **kw)
    assert op(hm[:0], params[:0], features[:0], rng[:0], **kw)[0].shape == (0, 16, len(ys))
    torch.library.opcheck(op.default, (hm, params, features, rng, ys, 96, 64, 1640, 590, 270.0),
                          test_utils=("test_schema", "test_faketensor"))
