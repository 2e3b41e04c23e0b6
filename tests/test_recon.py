"""The reconstruction engine, Selective Focus's loss and selection, and the methods end to end (ci budget)."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from selfocus_ext import models
from selfocus_ext.data.datasets import calibration_images
from selfocus_ext.models.base import HeadSpec, LaneModel
from selfocus_ext.models.targets import build_trainset
from selfocus_ext.quant import calibrate, quant_layers, quantize_model
from selfocus_ext.recon import (METHODS, Interrupted, NoiseScoreCurve, QuantizationAwareTraining, Reconstructor,
                                build_curves, find_units, get_budget, get_method, head_losses, select_heads,
                                selective_focus_loss)
from selfocus_ext.ops import adaround_quant
from selfocus_ext.recon.rounding import RoundingSchedule, cosine_lr

from conftest import EVERY_SIZE, MID_MODELS, shipped_models


@pytest.fixture(scope="module")
def images():
    return calibration_images(8, seed=5)


def quantized(name, images, bits="w4a4"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantize_model(models.load(name), bits)
    return calibrate(q, images)


# ---- the loss ------------------------------------------------------------------------------------------
class TwoHeads(LaneModel):
    heads = [HeadSpec("conf", "conf", "confidence", conf_fn="sigmoid"),
             HeadSpec("sem", "sem", "semantic", mask_from="conf")]


def test_sgf_loss_equals_its_formula():
    g = torch.Generator().manual_seed(0)
    fp = {"conf": torch.randn(2, 1, 3, 4, generator=g), "sem": torch.randn(2, 2, 3, 4, generator=g)}
    q = {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in fp.items()}
    m = TwoHeads()
    c = torch.sigmoid(fp["conf"])  # broadcast over the semantic channels
    sem = ((c * (q["sem"] - fp["sem"])) ** 2).sum(1).mean()
    conf = ((q["conf"] - fp["conf"]) ** 2).sum(1).mean()
    lam = 3.0
    got = selective_focus_loss(m, q, fp, ["conf", "sem"], focus=True, lam=lam)
    torch.testing.assert_close(got, sem + lam * conf)
    # the selected heads only; without focus: plain squared error, no mask, no lambda
    torch.testing.assert_close(selective_focus_loss(m, q, fp, ["sem"], True, lam), sem)
    plain = ((q["sem"] - fp["sem"]) ** 2).sum(1).mean() + conf
    torch.testing.assert_close(selective_focus_loss(m, q, fp, ["conf", "sem"], focus=False, lam=lam), plain)
    with pytest.raises(ValueError, match="no heads"):
        selective_focus_loss(m, q, fp, [])


def test_sgf_mask_is_a_constant_of_the_fp_model():
    fp = {"conf": torch.randn(1, 1, 2, 2, requires_grad=True), "sem": torch.randn(1, 2, 2, 2)}
    q = {"conf": torch.randn(1, 1, 2, 2), "sem": torch.randn(1, 2, 2, 2, requires_grad=True)}
    head_losses(TwoHeads(), q, fp, ["sem"], True, 2.0)["sem"].backward()
    assert fp["conf"].grad is None and q["sem"].grad is not None


# ---- curves and selection ------------------------------------------------------------------------------
def test_curve_interpolation_is_monotone_where_the_samples_are():
    c = NoiseScoreCurve("h", [0.1, 0.2, 0.4, 0.8], [1.0, 2.0, 2.0, 5.0], 1.0)
    grid = np.linspace(0, 2, 401)
    v = c(grid)
    assert np.all(np.diff(v) >= 0)
    assert c(0.0) == 0.0 and c(0.2) == 2.0 and c(0.3) == 2.0 and c(0.6) == pytest.approx(3.5)
    assert c(5.0) == 5.0  # constant beyond the last level
    with pytest.raises(ValueError, match="increasing"):
        NoiseScoreCurve("h", [0.2, 0.1], [1, 2], 1.0)


def test_selection_picks_the_heads_the_curves_rank_highest():
    steep = NoiseScoreCurve("a", [1.0, 2.0], [10.0, 20.0], 1.0)
    flat = NoiseScoreCurve("b", [1.0, 2.0], [1.0, 2.0], 1.0)
    mid = NoiseScoreCurve("c", [1.0, 2.0], [4.0, 8.0], 1.0)
    curves = {"a": steep, "b": flat, "c": mid}
    # same error everywhere: the steepest curve wins
    assert select_heads(curves, {"a": 1.0, "b": 1.0, "c": 1.0}, 1) == ["a"]
    # a large error on a flat head can outrank a small error on a steep one
    assert select_heads(curves, {"a": 0.05, "b": 2.0, "c": 0.1}, 2) == ["b", "a"]
    with pytest.raises(ValueError, match="k must be"):
        select_heads(curves, {"a": 1.0}, 0)
    with pytest.raises(ValueError, match="no noise-score curve"):
        select_heads(curves, {"z": 1.0}, 1)


def test_noise_curves_rise_with_noise(images):
    m = models.load("bezier-s")
    curves = build_curves(m, images, levels=4, reruns=2, progress=False)
    assert set(curves) == {h.name for h in m.heads}
    for c in curves.values():
        assert len(c.levels) == 4 and all(s >= 0 for s in c.scores)
        assert c.scores[-1] > c.scores[0]  # the full-RMS noise distorts more than 1/128 of it


# ---- units and schedules -------------------------------------------------------------------------------
def test_units_cover_every_layer_once(images):
    q = quantized("scnn-s", images)
    layers = set(quant_layers(q).values())
    for granularity in ("layer", "block"):
        units = find_units(q, images[:1], granularity)
        seen = [l for u in units for l in u.layers]
        assert len(seen) == len(layers) and set(seen) == layers
    blocks = {u.name: u for u in find_units(q, images[:1], "block")}
    assert "mp" in blocks and len(blocks["mp"].layers) == 4  # message passing runs its convs repeatedly
    assert "backbone.layer1" in blocks  # a residual block (3 layers with its shortcut)
    layer_units = find_units(q, images[:1], "layer")
    assert all(len(u.layers) == 1 for u in layer_units if u.name != "mp")
    with pytest.raises(ValueError, match="granularity"):
        find_units(q, images[:1], "net")


def test_resa_convolutions_are_units_of_their_own(images):
    """RESA's convolutions sit in a ModuleDict of ModuleLists (containers never called themselves) and each
    runs once: block-wise methods reconstruct them one by one rather than the whole aggregator at once."""
    q = quantized("resa-s", images)
    blocks = find_units(q, images[:1], "block")
    aggregator = [u for u in blocks if u.name.startswith("mp.")]
    assert len(aggregator) == 20 and all(len(u.layers) == 1 for u in aggregator)
    assert [u.name for u in aggregator[:6]] == [f"mp.convs.down.{i}" for i in range(5)] + ["mp.convs.up.0"]
    assert sum(len(u.layers) for u in blocks) == len(set(quant_layers(q).values()))


def test_budget_fractions_give_every_method_the_same_share_of_its_paper_budget():
    b = get_budget("f0.05")
    assert b.fraction == 0.05 and (b.layer_iters, b.block_iters, b.network_iters, b.refresh) == (1000, 1000, 250, 100)
    assert get_budget("0.05") == b and get_budget("f0.05", batch_size=8).batch_size == 8
    quick = get_budget("quick")
    assert quick.fraction == 0.12 and (quick.network_iters, quick.block_iters, quick.layer_iters) == (600, 2400, 2400)
    paper = get_budget("paper")
    assert (paper.layer_iters, paper.block_iters, paper.network_iters, paper.refresh) == (20000, 20000, 5000, 2000)
    assert get_budget("f0.00001").network_iters == 1  # at least one iteration
    for bad in ("f0", "f1.5", "fast", "f-1", "fnan"):
        with pytest.raises(ValueError, match="budget"):
            get_budget(bad)


def test_lsq_plus_offsets_start_on_the_calibrated_grid_and_train(images):
    """The LSQ+ grid (unsigned, from a learnable offset) starts where the calibrated symmetric grid is, and
    quantization-aware training moves weights, steps and offsets with the model's own loss."""
    q = quantized("lstr-s", images)
    with torch.no_grad():
        before = q(images[:2])
    layers = quant_layers(q)
    for layer in layers.values():
        layer.input_quantizer.make_offset_learnable()
    signed = [n for n, l in layers.items() if l.input_quantizer.signed]
    assert signed and all(float(layers[n].input_quantizer.offset) < 0 for n in signed)
    with torch.no_grad():
        after = q(images[:2])
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=1e-4, atol=1e-4)
    q = quantized("ganet-s", images)
    w0 = {n: l.weight.detach().clone() for n, l in quant_layers(q).items()}
    s0 = {n: float(l.input_quantizer.step) for n, l in quant_layers(q).items()}
    result = QuantizationAwareTraining(q, get_budget("ci"), seed=1, train_scenes=24, progress=False,
                                      make_trainset=build_trainset).run()
    assert result["iterations"] == get_budget("ci").qat_iters
    moved_w = sum(not torch.equal(w0[n], l.weight) for n, l in quant_layers(q).items())
    moved_s = sum(s0[n] != float(l.input_quantizer.step) for n, l in quant_layers(q).items())
    assert moved_w == len(w0) and moved_s > 0
    assert all(not isinstance(l.input_quantizer.offset, nn.Parameter) and l.input_quantizer.offset is not None
               for l in quant_layers(q).values())  # frozen into buffers
    path = "/tmp/_qat_roundtrip.pt"
    from selfocus_ext.quant import load_quantized, save_quantized
    save_quantized(q, path)
    back = load_quantized(models.load("ganet-s"), path)
    with torch.no_grad():
        a, b = q(images[:2]), back(images[:2])
    for k in a:
        assert torch.equal(a[k], b[k])
    with pytest.raises(ValueError, match="labelled"):
        Reconstructor(q, get_method("lsq-qat"), get_budget("ci"), images)


def test_build_trainset_renders_only_the_drawn_scenes_as_the_full_set_holds_them():
    mi = models.build("ganet-s").model_input
    full = build_trainset(12, 5, mi, cache=False)
    some = build_trainset(12, 5, mi, cache=False, only=np.array([0, 4, 11]))
    for k in full:
        np.testing.assert_array_equal(some[k], full[k][[0, 4, 11]], err_msg=k)  # NaN marks an empty slot row
    for bad in ([4, 0], [3, 3], [12], [-1]):
        with pytest.raises(ValueError, match="only"):
            build_trainset(12, 5, mi, cache=False, only=np.array(bad))


def test_qat_on_the_drawn_scenes_alone_trains_the_same_model(images):
    """The engine asks a make_trainset that takes ``only`` for the drawn scenes; one that does not gets asked
    for all of them; both train to the same weights."""
    def whole(n, seed, model_input):  # the older contract: no ``only``
        return build_trainset(n, seed, model_input, cache=False)

    asked = []

    def drawn(n, seed, model_input, only=None):
        asked.append(len(only))
        return build_trainset(n, seed, model_input, cache=False, only=only)

    states = []
    for make in (whole, drawn):
        q = quantized("ganet-s", images)
        QuantizationAwareTraining(q, get_budget("ci"), seed=3, train_scenes=200, progress=False,
                                  make_trainset=make).run()
        states.append(q.state_dict())
    budget = get_budget("ci")
    assert asked and asked[0] <= budget.qat_iters * budget.batch_size < 200
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_rounding_schedule():
    s = RoundingSchedule(100)
    assert not s.active(19) and s.active(20)
    assert s.beta(20) == 20.0 and s.beta(100) == 2.0 and s.beta(60) == pytest.approx(11.0)
    assert cosine_lr(1.0, 0, 10) == 1.0 and cosine_lr(1.0, 10, 10) == pytest.approx(0.0)


# ---- methods end to end -------------------------------------------------------------------------------
def _run(name, method, images, seed=0, checkpoint=None, stop_after=None, resume=False):
    q = quantized(name, images)
    m = models.load(name)
    meth = get_method(method)
    if meth.granularity == "qat":
        rec = QuantizationAwareTraining(q, get_budget("ci"), seed=seed, train_scenes=24, make_trainset=build_trainset, checkpoint=checkpoint,
                                        progress=False)
        if resume:
            rec.load_checkpoint(checkpoint)
        rec.stop_after = stop_after
        return q, rec, rec.run()
    curves = build_curves(m, images, levels=3, reruns=2, progress=False) if meth.select else None
    rec = Reconstructor(q, meth, get_budget("ci"), images, seed=seed, checkpoint=checkpoint, curves=curves,
                        progress=False)
    if resume:
        rec.load_checkpoint(checkpoint)
    rec.stop_after = stop_after
    return q, rec, rec.run()


@pytest.mark.parametrize("method", [m for m, v in METHODS.items() if v.granularity])
def test_every_tuning_method_runs_and_leaves_a_deployable_model(method, images):
    q, rec, result = _run("ganet-s", method, images)
    for layer in quant_layers(q).values():
        assert layer.weight_quantizer.v is None and layer.weight_quantizer.mode == "rtn"
        assert not isinstance(layer.input_quantizer.step, nn.Parameter) and layer.input_quantizer.keep_prob == 1.0
        # hard rounding was written back: the weights sit on their quantization grid
        torch.testing.assert_close(layer.qweight(), layer.weight, rtol=0, atol=1e-6)
    with torch.no_grad():
        out = q(images[:2])
    assert all(torch.isfinite(v).all() for v in out.values())
    gran = get_method(method).granularity
    per_unit = get_budget("ci").iters(gran)
    units = 1 if gran in ("network", "qat") else len(find_units(quantized("ganet-s", images), images[:1], gran))
    assert result["iterations"] == per_unit * units
    if get_method(method).granularity == "network":
        hist = result["history"]
        assert hist[0]["iteration"] == 0 and hist[-1]["final"]
        k = 2 if get_method(method).select else 3  # ganet-s has three heads
        assert all(len(h["selected"]) == k for h in hist if not h["final"])


@pytest.mark.parametrize("name", ["laneatt-s", "bezier-s", "scnn-s", "resa-s", "lstr-s", "condlane-s"])
@pytest.mark.parametrize("method", [m for m, v in METHODS.items() if v.granularity])
def test_other_zoo_models_tune(name, method, images):
    _check_tunes(name, method, images)


# the small models run every method (test_other_zoo_models_tune); a Mid model only widens the same code, so it
# runs Selective Focus, and the baselines too under SELFOCUS_TEST_EVERY_SIZE=1
@pytest.mark.parametrize("name", shipped_models(MID_MODELS))
@pytest.mark.parametrize("method", ["adaround", "brecq", "qdrop", "sf"] if EVERY_SIZE else ["sf"])
def test_mid_models_tune(name, method, images):
    _check_tunes(name, method, images)


def _check_tunes(name, method, images):
    q, rec, result = _run(name, method, images)
    with torch.no_grad():
        out = q(images[:2])
    assert all(torch.isfinite(v).all() for v in out.values())
    if get_method(method).select:
        k = 1 if len(models.build(name).heads) == 2 else 2  # the paper's k: 1 for two-head models
        assert all(len(h["selected"]) == k for h in result["history"] if not h["final"])


def test_tuning_changes_the_rounding_and_is_deterministic(images):
    calibrated = quantized("ganet-s", images)
    a, _, _ = _run("ganet-s", "qdrop", images, seed=1)
    b, _, _ = _run("ganet-s", "qdrop", images, seed=1)
    c, _, _ = _run("ganet-s", "qdrop", images, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    moved = [k for k in sa if k.endswith("input_quantizer.step") and not torch.equal(sa[k], calibrated.state_dict()[k])]
    assert moved  # the learned activation steps moved


@pytest.mark.parametrize("method,stop", [("brecq", 6), ("qdrop", 9), ("pdquant", 7), ("sf", 5), ("lsq-qat", 4)])
def test_resume_equals_an_uninterrupted_run(method, stop, images, tmp_path):
    full, _, _ = _run("ganet-s", method, images, seed=3)
    ck = str(tmp_path / "ck.pt")
    with pytest.raises(Interrupted):
        _run("ganet-s", method, images, seed=3, checkpoint=ck, stop_after=stop)
    resumed, _, result = _run("ganet-s", method, images, seed=3, checkpoint=ck, resume=True)
    sf, sr = full.state_dict(), resumed.state_dict()
    assert sf.keys() == sr.keys()
    for k in sf:
        assert torch.equal(sf[k], sr[k]), k


@pytest.mark.parametrize("method", ["sf", "brecq"])
def test_resume_from_the_final_checkpoint_keeps_the_tuned_model(method, images, tmp_path):
    """A run interrupted after tuning finished (while the tuned model is saved or evaluated) resumes to the
    same tuned model and history, without tuning again."""
    ck = str(tmp_path / "ck.pt")
    full, _, first = _run("ganet-s", method, images, seed=3, checkpoint=ck)
    resumed, rec, again = _run("ganet-s", method, images, seed=3, checkpoint=ck, resume=True)
    sf, sr = full.state_dict(), resumed.state_dict()
    assert sf.keys() == sr.keys() and all(torch.equal(sf[k], sr[k]) for k in sf)
    assert again["history"] == first["history"] and rec._iters_run == 0


def test_checkpoint_of_another_run_is_refused(images, tmp_path):
    ck = str(tmp_path / "ck.pt")
    with pytest.raises(Interrupted):
        _run("ganet-s", "brecq", images, seed=3, checkpoint=ck, stop_after=2)
    q = quantized("ganet-s", images)
    rec = Reconstructor(q, get_method("qdrop"), get_budget("ci"), images, seed=3, progress=False)
    with pytest.raises(ValueError, match="another run"):
        rec.load_checkpoint(ck)


@pytest.mark.parametrize("method", ["sf", "qdrop"])
def test_monitor_sees_every_iteration_and_unit_without_changing_the_run(method, images):
    events = []
    plain, _, _ = _run("ganet-s", method, images, seed=4)
    q = quantized("ganet-s", images)
    meth = get_method(method)
    curves = build_curves(models.load("ganet-s"), images, levels=3, reruns=2, progress=False) if meth.select else None
    rec = Reconstructor(q, meth, get_budget("ci"), images, seed=4, curves=curves, progress=False,
                        monitor=events.append)
    result = rec.run()
    its = [e for e in events if e["event"] == "iteration"]
    done = [e for e in events if e["event"] == "unit_done"]
    assert len(its) == result["iterations"]
    assert len(done) == (1 if meth.granularity == "network" else result["iterations"] // get_budget("ci").block_iters)
    if meth.granularity == "network":
        # the loss terms per selected head, and the rounding term
        assert all(set(e["terms"]) == set(rec.history[0]["selected"]) | {"round"} for e in its[:4])
    else:
        assert all(set(e["terms"]) == {"rec", "round"} for e in its)
    sp, sq = plain.state_dict(), q.state_dict()
    assert all(torch.equal(sp[k], sq[k]) for k in sp)


def test_overrides_replace_the_config_constants(images):
    q = quantized("ganet-s", images)
    rec = Reconstructor(q, get_method("qdrop"), get_budget("ci"), images, progress=False,
                        overrides={"v_lr": 0.5, "step_lr": 0.0, "round_weight": 0.0})
    assert rec.hyper["v_lr"] == 0.5 and rec.step_lr == 0.0 and rec.hyper["round_weight"] == 0.0
    start = {k: v.clone() for k, v in q.state_dict().items() if k.endswith("input_quantizer.step")}
    rec.run()
    # a step rate of 0 leaves every activation step where calibration put it
    assert all(torch.equal(q.state_dict()[k], v) for k, v in start.items())
    with pytest.raises(ValueError, match="overrides: unknown keys \\['lr'\\]"):
        Reconstructor(q, get_method("qdrop"), get_budget("ci"), images, overrides={"lr": 1.0})


def test_reconstructor_rejects_bad_input(images):
    q = quantized("ganet-s", images)
    with pytest.raises(ValueError, match="no reconstruction"):
        Reconstructor(q, get_method("omse"), get_budget("ci"), images)
    with pytest.raises(ValueError, match="curves"):
        Reconstructor(q, get_method("sf"), get_budget("ci"), images)
    with pytest.raises(ValueError, match="images"):
        Reconstructor(q, get_method("brecq"), get_budget("ci"), images[0])
    with pytest.raises(ValueError, match="unknown method"):
        get_method("gptq")
    with pytest.raises(ValueError, match="unknown budget"):
        get_budget("huge")


# ---- a user's model ------------------------------------------------------------------------------------
class _UserNet(nn.Module):
    def __init__(self):
        super().__init__()
        z = models.load("bezier-s")
        self.z = z

    def forward(self, x):
        o = self.z(x)
        return {"exist": o["logits"], "shape": o["curves"]}


def _wrapped(mc: bool):
    from selfocus_ext.models.base import WrappedLaneModel

    inner = models.build("bezier-s")

    def decode(out):
        return inner.decode({"logits": out["exist"], "curves": out["shape"]})

    return WrappedLaneModel(_UserNet(), [HeadSpec("exist", "exist", "confidence", conf_fn="sigmoid"),
                                         HeadSpec("shape", "shape", "semantic", mask_from="exist")],
                            decode, head_layers=["z.exist", "z.curve"], supports_monte_carlo=mc)


def test_wrapped_user_model_builds_curves_either_way_and_tunes(images):
    a = build_curves(_wrapped(True), images, levels=2, reruns=2, seed=4, progress=False)
    b = build_curves(_wrapped(False), images, levels=2, reruns=2, seed=4, progress=False)
    for h in a:  # one batched Monte-Carlo call or one call per copy: the same scores
        assert a[h].scores == pytest.approx(b[h].scores, abs=1e-9)
    w = _wrapped(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = calibrate(quantize_model(w, "w4a4"), images)
    assert quant_layers(q)["module.z.curve"].weight_quantizer.bits == 8  # a declared head layer
    Reconstructor(q, get_method("sf"), get_budget("ci"), images, curves=b, progress=False).run()


def test_wrapped_model_rejects_inconsistent_heads():
    from selfocus_ext.models.base import WrappedLaneModel

    with pytest.raises(ValueError, match="not a confidence head"):
        WrappedLaneModel(nn.Identity(), [HeadSpec("s", "s", "semantic", mask_from="c")], lambda o: None)
    with pytest.raises(ValueError, match="unique"):
        WrappedLaneModel(nn.Identity(), [], lambda o: None)
    m = WrappedLaneModel(nn.Identity(), [HeadSpec("c", "c", "confidence", conf_fn="sigmoid")], lambda o: None)
    with pytest.raises(TypeError, match="dict of head tensors"):
        m(torch.zeros(1, 3, 4, 4))


# ---- hard rounding forward (the network-wise methods) --------------------------------------------------
def test_straight_through_mode_computes_the_hard_weights_with_the_soft_gradient():
    from selfocus_ext.quant.quantizers import WeightQuantizer

    torch.manual_seed(0)
    w = torch.randn(6, 4, 3, 3)
    wq = WeightQuantizer(4)
    wq.calibrate(w)
    wq.init_adaround(w)
    with torch.no_grad():
        wq.v.add_(torch.randn_like(wq.v) * 0.3)
    wq.mode = "ste"
    out = wq(w)
    torch.testing.assert_close(out, adaround_quant(w, wq.v.detach(), wq.scale, 4, hard=True), rtol=0, atol=0)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    ste_grad = wq.v.grad.clone()
    wq.v.grad = None
    wq.mode = "soft"
    (wq(w) * g).sum().backward()
    torch.testing.assert_close(ste_grad, wq.v.grad)


def test_fused_hard_forward_tunes_as_the_two_call_composite(images, monkeypatch):
    """Selective Focus with the fused hard-forward op and with the composite it replaced (the soft and the hard
    rounding, each one adaround_quant call, joined straight-through) reach the same model bit for bit."""
    import copy

    from selfocus_ext.quant import quantizers

    def two_calls(w, v, scale, bits):
        soft = adaround_quant(w, v, scale, bits)
        hard = adaround_quant(w, v.detach(), scale, bits, hard=True)
        return hard + (soft - soft.detach())

    start = quantized("lstr-s", images)
    curves = build_curves(models.load("lstr-s"), images[:4], levels=3, reruns=2, progress=False)
    budget = get_budget("ci", network_iters=4)
    states = []
    for op in (quantizers.adaround_quant_ste, two_calls):
        monkeypatch.setattr(quantizers, "adaround_quant_ste", op)
        q = copy.deepcopy(start)
        Reconstructor(q, get_method("sf"), budget, images, curves=curves, progress=False).run()
        states.append(q.state_dict())
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_network_tuning_starts_from_the_calibrated_model(images):
    """With the hard forward the tuned network starts as the calibrated model computes (round-to-nearest
    weights); with AdaRound's soft forward it starts from the float weights instead."""
    from selfocus_ext.recon.state import prepare_layers

    start = quantized("lstr-s", images)
    with torch.no_grad():
        ref_out = start(images[:4])
    for hard in (True, False):
        q = quantized("lstr-s", images)
        rec = Reconstructor(q, get_method("network"), get_budget("ci"), images, progress=False,
                            overrides={"hard_forward": float(hard)})
        layers = list(quant_layers(q).values())
        prepare_layers(layers, 1.0)
        rec._weight_mode(layers)
        with torch.no_grad():
            out = q(images[:4])
        assert all(torch.equal(out[k], ref_out[k]) for k in out) is hard
    assert get_method("sf").hard_forward and get_method("network").hard_forward
    assert not get_method("qdrop").hard_forward and not get_method("brecq").hard_forward


def test_micro_batches_give_the_batch_gradient(images):
    """Under a small ``tuning_memory`` a network-wise step runs its batch as micro-batches whose weighted
    gradients add up to the whole batch's (to float rounding); without a limit the batch runs whole."""
    from selfocus_ext.recon.losses import head_losses
    from selfocus_ext.recon.state import prepare_layers, quantization_disabled
    from selfocus_ext.recon.units import index

    q = quantized("lstr-s", images)
    assert Reconstructor(q, get_method("network"), get_budget("ci"), images, progress=False)._micro_batch({}, []) \
        == get_budget("ci").batch_size
    rec = Reconstructor(q, get_method("network"), get_budget("ci"), images, progress=False, tuning_memory=1 << 20)
    layers = list(quant_layers(q).values())
    prepare_layers(layers, 1.0)
    rec._weight_mode(layers)
    with torch.no_grad(), quantization_disabled(q):
        fp_out = q(images[:8])
    heads = [h.name for h in q.heads]
    rec.micro_batch = rec._micro_batch(fp_out, heads)
    assert 1 <= rec.micro_batch < 8
    idx = torch.tensor([5, 1, 7, 0, 3, 3, 6, 2])
    params = [l.weight_quantizer.v for l in layers if l.weight_quantizer.v is not None]
    out = q(images[idx])
    whole_terms = head_losses(q, out, index(fp_out, idx), heads, rec.method.focus, rec.lam)
    sum(whole_terms.values()).backward()
    whole = [p.grad.clone() for p in params]
    terms = rec._micro_batched_step(torch.optim.SGD(params, lr=0.0), idx, fp_out, heads,
                                    torch.zeros((), requires_grad=True), 0, 1)
    for k in whole_terms:
        torch.testing.assert_close(terms[k], whole_terms[k].detach(), rtol=1e-5, atol=0)
    for a, p in zip(whole, params):
        torch.testing.assert_close(p.grad, a, rtol=1e-4, atol=1e-9)
    assert any(float(a.abs().max()) > 0 for a in whole)
    with pytest.raises(ValueError, match="tuning_memory: expected bytes"):
        Reconstructor(q, get_method("network"), get_budget("ci"), images, progress=False, tuning_memory=100)


def test_micro_batch_size_counts_the_backward_peak():
    """The cap bounds saved bytes times the backward's peak factor, within [1, batch]."""
    from selfocus_ext.recon.engine import BACKWARD_PEAK_FACTOR, micro_batch_size

    gib = 1 << 30
    assert micro_batch_size(gib, 16, None) == 16
    assert micro_batch_size(gib, 16, 6 * gib) == 6 // BACKWARD_PEAK_FACTOR
    assert micro_batch_size(gib, 16, 64 * gib) == 16
    assert micro_batch_size(10 * gib, 16, 6 * gib) == 1
    assert micro_batch_size(0, 4, 1 << 20) == 4


def test_block_units_take_fp_inputs_and_targets_from_the_fp_network(images, monkeypatch):
    """Finished units hold their rounded weights; the FP inputs and targets of every later unit still come
    from the FP network (a copy of the calibrated model), as the reference implementations compute them."""
    import copy

    from selfocus_ext.recon import engine
    from selfocus_ext.recon.state import quantization_disabled
    from torch.utils._pytree import tree_flatten

    from selfocus_ext.recon.units import capture

    q = quantized("ganet-s", images)
    fp = copy.deepcopy(q)
    seen = []

    def recording(model, unit, imgs, batch_size, want_output, **kw):
        result = capture(model, unit, imgs, batch_size, want_output, **kw)
        if want_output:
            seen.append((model, unit, result))
        return result

    monkeypatch.setattr(engine, "capture", recording)
    rec = Reconstructor(q, get_method("brecq"), get_budget("ci"), images, progress=False)
    rec.run()
    assert len(seen) >= 3
    fp_modules = dict(fp.named_modules())
    for model, unit, (fp_in, fp_out) in seen[1:]:
        assert model is rec.fp_model
        name = next(n for n, m in rec.fp_model.named_modules() if m is unit)
        with quantization_disabled(fp):
            want_in, want_out = capture(fp, fp_modules[name], images, 64, want_output=True)
        got = [t for t in tree_flatten((fp_in, fp_out))[0] if isinstance(t, torch.Tensor)]
        want = [t for t in tree_flatten((want_in, want_out))[0] if isinstance(t, torch.Tensor)]
        assert len(got) == len(want) > 0
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the tuned model's first unit holds rounded weights, the FP copy the float ones
    first = seen[0][1]
    name = next(n for n, m in rec.fp_model.named_modules() if m is first)
    tuned_w = [l.weight for l in q.get_submodule(name).modules() if hasattr(l, "weight_quantizer")]
    fp_w = [l.weight for l in rec.fp_model.get_submodule(name).modules() if hasattr(l, "weight_quantizer")]
    assert any(not torch.equal(a, b) for a, b in zip(tuned_w, fp_w))
