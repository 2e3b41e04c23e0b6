"""The zoo models: forward, head declarations, targets/decoders consistency, training steps."""
import numpy as np
import pytest
import torch

from selfocus_ext import models
from selfocus_ext.metrics import culane
from selfocus_ext.models.targets import build_trainset

NAMES = ["ganet-s", "laneatt-s", "bezier-s", "scnn-s"]


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
    assert 3e5 < n_params < 2.5e6
    lanes = m.decode(out)
    assert lanes.xs.shape[0] == 2 and lanes.xs.shape[2] == m.model_input.frame.rows


def _oracle(name, m, t):
    if name == "ganet-s":
        return {"kpts_hm": torch.logit(t["hm"].clamp(1e-4, 1 - 1e-4)), "pts_offset": t["pts"], "int_offset": t["int"]}
    if name == "scnn-s":
        return {"out": torch.nn.functional.one_hot(t["seg"], 5).permute(0, 3, 1, 2).float() * 20,
                "lane": (t["exist"] * 2 - 1) * 10}
    if name == "laneatt-s":
        logits = torch.stack([torch.zeros(t["label"].shape), (t["label"] * 2 - 1).float() * 10], -1)
        return {"cls_logits": logits, "reg": torch.cat([t["length"][..., None], t["off"]], -1)}
    # bezier: put each GT curve on its own query
    B, Q = len(t["curves"]), m.queries
    logits = torch.full((B, Q), -10.0)
    curves = torch.zeros(B, Q, 4, 2)
    for b, c in enumerate(t["curves"]):
        for g in range(len(c)):
            q = 2 + 6 * g
            logits[b, q] = 10.0
            curves[b, q] = torch.from_numpy(c[g])
    return {"logits": logits, "curves": curves}


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


def test_missing_weights_error(tmp_path, monkeypatch):
    from selfocus_ext.models import registry

    monkeypatch.setattr(registry, "WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no trained weights for 'ganet-s'"):
        models.load("ganet-s")
    assert models.load("ganet-s", pretrained=False) is not None
