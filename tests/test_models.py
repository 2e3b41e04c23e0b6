"""The zoo models: forward, head declarations, targets/decoders consistency, training steps."""
import numpy as np
import pytest
import torch

from selfocus_ext import models
from selfocus_ext.metrics import culane
from selfocus_ext.models.targets import build_trainset
from selfocus_ext.testing.head_oracle import outputs_from_targets as _oracle

from conftest import FAMILIES

NAMES = [f"{f}-{size}" for size in "sm" for f in FAMILIES]


def family(name):
    return name.rsplit("-", 1)[0]


@pytest.fixture(scope="module")
def batch():
    model = models.build("ganet-s")
    data = build_trainset(24, 5, model.model_input, cache=False)
    return data


def gt_points(slots, ys):
    return [[np.stack([l[~np.isnan(l)], ys[~np.isnan(l)]], 1) for l in s if not np.isnan(l).all()] for s in slots]


def test_registry():
    assert set(NAMES) <= set(models.available())
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.build("nope")
    sizes = models.sizes()
    assert all(sorted(sizes[f]) == ["m", "s"] for f in FAMILIES)


@pytest.mark.parametrize("fam", FAMILIES)
def test_mid_is_the_small_design_deeper(fam):
    """Same heads and output shapes, a deeper backbone, and 1.8-2.5x the parameters (the ResNet-18 -> 34 step)."""
    small, mid = models.build(f"{fam}-s").eval(), models.build(f"{fam}-m").eval()
    params = [sum(p.numel() for p in m.parameters()) for m in (small, mid)]
    assert 1.8 <= params[1] / params[0] <= 2.5, params
    assert [h.__dict__ for h in small.heads] == [h.__dict__ for h in mid.heads]
    x = torch.zeros(1, 3, small.model_input.size[1], small.model_input.size[0])
    with torch.no_grad():
        a, b = small(x), mid(x)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    blocks = [sum(1 for n, _ in m.backbone.named_modules() if n.endswith("conv2")) for m in (small, mid)]
    assert blocks[1] > blocks[0]


@pytest.mark.parametrize("fam", ["ganet", "scnn", "lstr"])
def test_builders_take_depth_and_width(fam):
    from selfocus_ext.models import backbone, lstr

    cls = models.build(f"{fam}-s").__class__
    if fam == "lstr":
        widths, depths = (8, 8, 16, 16, 32), (1, 1, 3, 1)
        m = cls(widths=widths, depths=depths, dim=32)
    else:
        widths, depths = (8, 16, 24, 40), (1, 1, 3)
        m = cls(widths=widths, depths=depths)
    assert len(m.backbone.layer3) == 3 and m.backbone.layer3[0].conv1[0].out_channels == widths[3]
    x = torch.zeros(2, 3, m.model_input.size[1], m.model_input.size[0])
    with torch.no_grad():
        lanes = m.decode(m.eval()(x))
    assert lanes.xs.shape[0] == 2
    stages = 4 if fam == "lstr" else 3
    with pytest.raises(ValueError, match="depths: expected"):
        cls(depths=(2,) * (stages + 1))
    with pytest.raises(ValueError, match="widths: expected"):
        cls(widths=(8, 8))
    with pytest.raises(ValueError, match="depths: expected"):
        cls(depths=(1, 0, 2, 1)[:stages])
    assert backbone.MID_DEPTHS == (2, 4, 6) and lstr.MID_DEPTHS == (2, 4, 6, 3)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_heads(name, batch):
    torch.manual_seed(0)
    m = models.build(name).eval()
    x = m.model_input.normalize(batch["images"][:2])
    out = m(x)
    keys = {h.output_key for h in m.heads}
    assert keys == set(out)
    for h in m.heads:
        if h.role == "semantic":
            conf = m.head(h.mask_from)
            assert conf.role == "confidence"
            mask = m.confidence_mask(h.name, out)
            torch.broadcast_shapes(mask.shape, out[h.output_key].shape)  # raises if not broadcastable
            assert torch.all((mask >= 0) & (mask <= 1))
    n_params = sum(p.numel() for p in m.parameters())
    assert 3e5 < n_params < 7e6  # LSTR-M (CULane width) is the largest, about 6.3 M
    lanes = m.decode(out)
    assert lanes.xs.shape[0] == 2 and lanes.xs.shape[2] == m.model_input.frame.rows


@pytest.mark.parametrize("name", NAMES)
def test_decoding_the_training_targets_recovers_the_lanes(name, batch):
    m = models.build(name)
    slots = batch["slots"][:12]
    out = _oracle(name, m, m.targets(slots))
    res = culane.evaluate(m.decode(out).to_points(), gt_points(slots, m.model_input.frame.ys))[0.5]
    assert res.fp == 0 and res.fn <= 1 and res.tp >= 15, res


@pytest.mark.parametrize("name", NAMES)
def test_a_few_training_steps_lower_the_loss(name, batch):
    torch.manual_seed(0)
    m = models.build(name).train()
    x = m.model_input.normalize(batch["images"][:8])
    t = m.targets(batch["slots"][:8])
    opt = torch.optim.Adam(m.parameters(), 2e-3)
    losses = []
    for _ in range(12):
        loss = m.loss(m(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def _shipped():
    import os

    from selfocus_ext.models import registry

    return [n for n in NAMES if os.path.isfile(registry.weights_path(n)) and os.path.isfile(registry.weights_path(n)[:-3] + ".json")]


@pytest.mark.parametrize("name", _shipped())
def test_shipped_model_reproduces_its_card(name):
    import json

    from selfocus_ext.models import registry
    from selfocus_ext.workflow.data import DataSpec, evaluation_set
    from selfocus_ext.workflow.evaluation import evaluate

    with open(registry.weights_path(name)[:-3] + ".json") as f:
        card = json.load(f)
    model = models.load(name)
    res = evaluate(model, evaluation_set(DataSpec("synth"), 200, model.model_input), progress=False)
    assert abs(res["f1"] - card["f1_first200"]) <= 1.0
    assert sum(p.numel() for p in model.parameters()) == card["parameters"]


@pytest.mark.parametrize("fam", [f for f in FAMILIES if f"{f}-m" in _shipped() and f"{f}-s" in _shipped()])
def test_mid_model_meets_the_small_models_floor(fam):
    """A shipped Mid model's card: test-set F1 at least the Small model's minus 1, and the training facts."""
    import json

    from selfocus_ext.models import registry

    cards = {}
    for size in "sm":
        with open(registry.weights_path(f"{fam}-{size}")[:-3] + ".json") as f:
            cards[size] = json.load(f)
    assert cards["m"]["f1"]["total"] >= cards["s"]["f1"]["total"] - 1.0
    assert cards["m"]["training"]["minutes"] <= 45 and cards["m"]["training"]["steps"] > 0
    assert 1.8 <= cards["m"]["parameters"] / cards["s"]["parameters"] <= 2.5


@pytest.mark.parametrize("fam", ["ganet", "scnn", "lstr"])
def test_a_mid_model_grown_from_the_small_one_computes_the_same(fam, batch):
    """Shared tensors copied, the added residual blocks start as identities, LSTR's transformer widened from
    64 to 128 units: the same outputs (eval mode)."""
    from selfocus_ext.models.growth import grow_from

    torch.manual_seed(3)
    small = models.build(f"{fam}-s")
    for m in small.modules():  # non-trivial BatchNorm statistics so that a wrong copy shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    small.eval()
    mid = models.build(f"{fam}-m")
    copied, fresh = grow_from(mid, small.state_dict())
    assert copied == len(small.state_dict()) and fresh > 0
    x = small.model_input.normalize(batch["images"][:2])
    with torch.no_grad():
        a, b = small(x), mid.eval()(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_the_wide_sine_code_holds_the_narrow_one_at_the_first_copies():
    from selfocus_ext.models.lstr import sine_position, sine_units

    first = [u[0] for u in sine_units(64)]
    assert sorted(first + [u[1] for u in sine_units(64)]) == list(range(128))
    torch.testing.assert_close(sine_position(5, 7, 128)[first], sine_position(5, 7, 64))


def test_widened_weights_read_every_copy_or_the_first():
    from selfocus_ext.models.growth import copies_of_each, widen_weight

    w, x = torch.randn(3, 4), torch.randn(4)
    rows, cols = copies_of_each(3), copies_of_each(4, times=3)
    wide_x = x.repeat(3)
    torch.testing.assert_close(widen_weight(w, rows, cols) @ wide_x, (w @ x).repeat(2))
    first = widen_weight(w, rows, cols, read="first")
    torch.testing.assert_close(first @ (wide_x + torch.cat([torch.zeros(4), torch.randn(8)])), (w @ x).repeat(2))
    with pytest.raises(ValueError, match="read"):
        widen_weight(w, rows, cols, read="mean")


def test_lstr_refuses_to_widen_by_other_than_two():
    small = models.build("lstr-s")
    state = {k: v for k, v in small.state_dict().items()}
    state["input_proj.weight"] = torch.zeros(48, 256, 1, 1)
    with pytest.raises(ValueError, match="small_state: a transformer of width 128"):
        models.build("lstr-m").widen_from(state)


def test_resa_aggregator_is_the_gather_form():
    """RESA's shifts written as the public implementations' index gathers: row r reads row (r + s) mod H going
    down, (r - s) mod H going up; the same for columns right and left."""
    from selfocus_ext.models.resa import RecurrentShift

    torch.manual_seed(1)
    agg = RecurrentShift(4, iterations=3, alpha=2.0, k=3)
    x = torch.randn(2, 4, 12, 10)
    ref = x.clone()
    for name, axis, sign in (("down", 2, 1), ("up", 2, -1), ("right", 3, 1), ("left", 3, -1)):
        n = x.shape[axis]
        for i, conv in enumerate(agg.convs[name]):
            idx = (torch.arange(n) + sign * (n // 2 ** (3 - i))) % n
            ref = ref + 2.0 * torch.relu(conv(ref.index_select(axis, idx)))
    torch.testing.assert_close(agg(x), ref)
    assert all(c.bias is None for convs in agg.convs.values() for c in convs)
    assert [c.kernel_size for c in agg.convs["down"]] == [(1, 3)] * 3
    assert [c.kernel_size for c in agg.convs["left"]] == [(3, 1)] * 3


@pytest.mark.parametrize("n", [1, 2, 5, 456])
def test_off_diagonal_spread_is_the_index_scatter(n):
    """The reshape form against the public implementation's scatter into nonzero(ones - eye) positions."""
    from selfocus_ext.models.laneatt import spread_off_diagonal

    w = torch.randn(3, n, n - 1, requires_grad=True)
    ref = torch.zeros(3, n, n)
    idx = torch.nonzero(torch.ones(n, n) - torch.eye(n))
    ref[:, idx[:, 0], idx[:, 1]] = w.detach().flatten(1)
    out = spread_off_diagonal(w)
    assert torch.equal(out, ref)
    if n > 1:
        g = torch.randn(3, n, n)
        out.backward(g)
        assert torch.equal(w.grad, g[:, idx[:, 0], idx[:, 1]].reshape(3, n, n - 1))


def test_anchor_attention_weighs_only_the_other_anchors():
    from selfocus_ext.models.laneatt import AnchorAttention

    torch.manual_seed(2)
    att = AnchorAttention(6, 4)
    feats = torch.randn(2, 4, 6)
    weights = torch.softmax(att.score(feats), -1)  # [2, 4, 3]
    expected = torch.stack([torch.stack([sum(weights[b, i, j - (j > i)] * feats[b, j] for j in range(4) if j != i)
                                         for i in range(4)]) for b in range(2)])
    torch.testing.assert_close(att(feats), expected)
    m = models.build("laneatt-s")
    assert m.attention.score.in_features == 32 * 10 and m.attention.score.out_features == m.num_anchors - 1
    assert m.fc[0].in_features == 2 * 32 * 10


def test_lstr_shares_four_curve_coefficients_per_image():
    from selfocus_ext.models.lstr import sine_position

    torch.manual_seed(0)
    m = models.build("lstr-s").eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, 160, 400))
    curves = out["curves"]
    assert curves.shape == (2, 7, 8) and out["logits"].shape == (2, 7, 2)
    torch.testing.assert_close(curves[:, :, 2:6], curves[:, :1, 2:6].expand(2, 7, 4))  # k, f, m, n shared
    assert not torch.allclose(curves[:, 0, [0, 1, 6, 7]], curves[:, 1, [0, 1, 6, 7]])  # ends, b, b' per lane
    pos = sine_position(5, 13, 64)
    assert pos.shape == (64, 5, 13)
    assert torch.allclose(pos[:32, :, 0], pos[:32, :, 7]) and not torch.allclose(pos[:32, 0], pos[:32, 1])  # rows
    assert torch.allclose(pos[32:, 0], pos[32:, 4]) and not torch.allclose(pos[32:, :, 0], pos[32:, :, 1])  # columns
    m.train()
    train_out = m(torch.randn(2, 3, 160, 400))
    assert train_out["aux_logits"].shape == (1, 2, 7, 2) and train_out["aux_curves"].shape == (1, 2, 7, 8)


def test_missing_weights_error(tmp_path, monkeypatch):
    from selfocus_ext.models import registry

    monkeypatch.setattr(registry, "WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no trained weights for 'ganet-s'"):
        models.load("ganet-s")
    assert models.load("ganet-s", pretrained=False) is not None
