"""Never worse than the start: the held-out check, the paired bootstrap of F1 differences, per-image counts,
and the tune command keeping the better model (both branches, and --keep-tuned)."""
import json
import os

import numpy as np
import pytest
import torch

from selfocus_ext import tune
from selfocus_ext.recon import Reconstructor
from selfocus_ext.metrics import culane
from selfocus_ext.models import registry
from selfocus_ext.quant import calibrate, load_quantized, quant_layers, quantize_model
from selfocus_ext.workflow import heldout, stages
from selfocus_ext.workflow.bootstrap import describe, paired_difference
from selfocus_ext.workflow.data import DataSpec, calibration_set, evaluation_set, heldout_set
from selfocus_ext.workflow.evaluation import evaluate

FAST = ["--budget", "ci", "--calib", "8", "--test", "16", "--quiet"]


# ---- held-out images --------------------------------------------------------------------------------------
def test_heldout_images_follow_the_calibration_images_and_are_disjoint():
    mi = registry.load("ganet-s").model_input
    spec = DataSpec("synth")
    calib = calibration_set(spec, 6, 3, mi)
    held = heldout_set(spec, 4, 6, 3, mi)
    longer = calibration_set(spec, 10, 3, mi)
    assert torch.equal(longer[:6], calib) and torch.equal(longer[6:], held)
    assert not any(torch.equal(h, c) for h in held for c in calib)
    with pytest.raises(ValueError, match="held-out images: expected a positive count"):
        heldout_set(spec, 0, 6, 3, mi)


def test_heldout_images_of_a_data_set_skip_the_calibration_choice(tmp_path):
    from selfocus_ext.data.layouts import write_culane

    root = str(tmp_path / "culane")
    write_culane(root, 10, seed=1, split="train")
    mi = registry.load("ganet-s").model_input
    spec = DataSpec("culane", root)
    calib = calibration_set(spec, 4, 0, mi)
    held = heldout_set(spec, 3, 4, 0, mi)
    assert len(held) == 3 and not any(torch.equal(h, c) for h in held for c in calib)
    with pytest.raises(ValueError, match="only 10 training images"):
        heldout_set(spec, 8, 4, 0, mi)


# ---- the check ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ganet():
    model = registry.load("ganet-s")
    spec = DataSpec("synth")
    images = calibration_set(spec, 8, 0, model.model_input)
    q = calibrate(quantize_model(model, "w4a4"), images)
    ref = heldout.reference(model, heldout_set(spec, 6, 8, 0, model.model_input))
    return model, q, ref


def test_relative_rms_in_chunks_equals_the_whole_formula():
    g = torch.Generator().manual_seed(3)
    fp = torch.randn(37, 2, 5, 7, generator=g)
    q = fp + 0.1 * torch.randn(37, 2, 5, 7, generator=g)
    whole = float((q.double() - fp.double()).pow(2).mean().sqrt() / fp.double().pow(2).mean().sqrt())
    for chunk in (1, 5, 16, 64):
        assert heldout._relative_rms(fp, q, chunk) == pytest.approx(whole, rel=1e-12)
    kept = fp.double().clone()
    heldout._relative_rms(kept, kept + 1, 4)  # float64 inputs: not modified in place
    assert torch.equal(kept, fp.double())
    assert heldout._relative_rms(torch.zeros(3, 2), torch.ones(3, 2)) == float("inf")


def test_fp_model_scores_zero_and_a_damaged_model_scores_worse(ganet):
    model, q, ref = ganet
    fp = heldout.score(model, ref)
    assert fp.lds == 0.0 and all(e == 0.0 for e in fp.head_error.values())
    start = heldout.score(q, ref)
    assert start.lds >= 0 and all(e > 0 for e in start.head_error.values())
    import copy

    worse = copy.deepcopy(q)
    with torch.no_grad():
        for layer in quant_layers(worse).values():
            layer.weight.mul_(-1.0)
    bad = heldout.score(worse, ref)
    assert bad.lds > start.lds and all(bad.head_error[h] > start.head_error[h] for h in bad.head_error)


def test_choose_keeps_the_tuned_model_unless_it_is_further_from_fp():
    a = heldout.HeldOutScore(4.604, {"hm": 0.1})
    b = heldout.HeldOutScore(4.224, {"hm": 0.2})
    c = heldout.choose(a, b)
    assert c["kept"] == "tuned" and c["warning"] is None and "4.224" in c["reason"]
    c = heldout.choose(b, a)
    assert c["kept"] == "start" and "4.604" in c["warning"] and "4.224" in c["warning"]
    c = heldout.choose(b, a, keep_tuned=True)
    assert c["kept"] == "tuned" and c["warning"] and "--keep-tuned" in c["reason"]
    assert heldout.choose(a, a)["kept"] == "tuned"  # a tie keeps the tuned model


def test_reference_refuses_bad_images(ganet):
    model = ganet[0]
    with pytest.raises(ValueError, match="held-out images must be a non-empty"):
        heldout.reference(model, torch.zeros(0, 3, 8, 8))


# ---- paired bootstrap -------------------------------------------------------------------------------------
def _counts(n, seed, miss=0.1):
    rng = np.random.default_rng(seed)
    gt = rng.integers(1, 5, n)
    tp = rng.binomial(gt, 1 - miss)
    fp = rng.binomial(4, miss / 2, n)
    return np.stack([tp, fp, gt - tp], 1).astype(float)


def test_bootstrap_of_identical_models_is_zero_and_unresolved():
    a = _counts(300, 0)
    r = paired_difference(a, a.copy())
    assert r["diff"] == 0.0 and r["low"] == 0.0 and r["high"] == 0.0 and not r["resolved"]


def test_bootstrap_difference_matches_the_totals_and_resolves_a_large_change():
    a = _counts(400, 1, miss=0.1)
    b = a.copy()
    b[:, 0] = np.maximum(0, a[:, 0] - (np.arange(400) % 2))  # every other image loses a lane
    b[:, 2] = a[:, 0] + a[:, 2] - b[:, 0]

    def f1(c):
        tp, fp, fn = c.sum(0)
        return 100 * 2 * tp / (2 * tp + fp + fn)

    r = paired_difference(a, b, resamples=500)
    assert r["diff"] == pytest.approx(f1(b) - f1(a))
    assert r["resolved"] and r["high"] < 0 and r["low"] <= r["diff"] <= r["high"]
    assert "resolved" in describe(r) and "400 test images" in describe(r)


def test_bootstrap_interval_narrows_with_more_images():
    def half(n):
        a = _counts(n, 2)
        b = a.copy()
        flip = np.random.default_rng(3).random(n) < 0.1  # a tenth of the images lose a true positive
        b[flip, 0] = np.maximum(0, b[flip, 0] - 1)
        b[:, 2] = a[:, 0] + a[:, 2] - b[:, 0]
        return paired_difference(a, b, resamples=400)["half_width"]

    assert half(2000) < half(100)


def test_bootstrap_tusimple_rows_and_bad_input():
    rng = np.random.default_rng(0)
    a = np.stack([rng.uniform(0.8, 1, 50), rng.uniform(0, 0.2, 50), rng.uniform(0, 0.2, 50)], 1)
    r = paired_difference(a, a * [1, 0.5, 0.5], metric="tusimple", resamples=200)
    assert r["diff"] > 0
    with pytest.raises(ValueError, match="metric must be one of"):
        paired_difference(a, a, metric="kitti")
    with pytest.raises(ValueError, match="two \\[N, 3\\] arrays"):
        paired_difference(a, a[:10])
    with pytest.raises(ValueError, match="no test images"):
        paired_difference(np.zeros((0, 3)), np.zeros((0, 3)))


def test_per_image_counts_add_up_to_the_scenario_counts():
    model = registry.load("ganet-s")
    evalset = evaluation_set(DataSpec("synth"), 24, model.model_input)
    r = evaluate(model, evalset, progress=False)
    counts = r["image_counts"]
    assert counts.shape == (24, 3)
    assert counts.sum(0).long().tolist() == r["counts"]["total"]
    # the same counts as scoring each scenario on its own
    _, labels = evalset.items(0, 24)
    from selfocus_ext.lanes import LaneSet

    ys = torch.from_numpy(model.model_input.frame.ys)
    xs = r["xs"]
    preds = LaneSet(ys, xs, torch.where(torch.isnan(xs).all(-1), float("nan"), 1.0)).to_points()
    grouped = culane.evaluate_grouped(preds, [l["lanes"] for l in labels], [l["scenario"] for l in labels])
    for s, c in grouped.items():
        assert r["counts"][s] == [c[0.5].tp, c[0.5].fp, c[0.5].fn]


# ---- the tune command ---------------------------------------------------------------------------------------
def _run(args, capsys):
    code = tune.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _damage_tuning(monkeypatch):
    """Tuning that returns a model far from the FP one (every weight negated after the run)."""
    original = Reconstructor.run

    def damaging(self):
        result = original(self)
        with torch.no_grad():
            for layer in quant_layers(self.qmodel).values():
                layer.weight.mul_(-1.0)
        return result

    monkeypatch.setattr(Reconstructor, "run", damaging)


def _same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_tune_keeps_the_start_when_tuning_moves_away_from_fp(capsys, tmp_path, monkeypatch):
    _damage_tuning(monkeypatch)
    out = str(tmp_path / "worse")
    code, table, err = _run(FAST + ["--method", "qdrop", "--out", out], capsys)
    assert code == 0
    kept = json.load(open(os.path.join(out, "report.json")))["kept"]
    assert kept["kept"] == "start" and kept["tuned"]["lds"] > kept["start"]["lds"]
    assert "warning: tuning raised the held-out Lane Distortion Score" in err
    assert "kept: the start (calibration only)" in table and "WARNING" in table
    base = registry.load("ganet-s")
    final = load_quantized(base, os.path.join(out, "quantized.pt"))
    assert _same_model(final, load_quantized(base, os.path.join(out, "calibrated.pt")))
    assert not _same_model(final, load_quantized(base, os.path.join(out, "tuned.pt")))
    # the report shows both models' test F1 and every difference with its interval
    assert "tuned (qdrop)" in table and "calibration only" in table
    assert "tuned - calibration only" in table and "paired-bootstrap interval" in table

    # --keep-tuned returns the tuned model, still with the warning
    out2 = str(tmp_path / "forced")
    code, table, err = _run(FAST + ["--method", "qdrop", "--out", out2, "--keep-tuned"], capsys)
    assert code == 0 and "warning:" in err and "kept: the tuned model -- --keep-tuned" in table
    final = load_quantized(base, os.path.join(out2, "quantized.pt"))
    assert _same_model(final, load_quantized(base, os.path.join(out2, "tuned.pt")))
    assert json.load(open(os.path.join(out2, "run.json")))["keep_tuned"] is True


def _negate(model):
    with torch.no_grad():
        for layer in quant_layers(model).values():
            layer.weight.mul_(-1.0)
    return model


def test_tune_keeps_the_tuned_model_when_it_is_closer_to_fp(capsys, tmp_path, monkeypatch):
    # a damaged start (weights negated after calibration) that tuning repairs (negated back)
    calibrate_original, run_original = stages.calibrate_model, Reconstructor.run
    monkeypatch.setattr(stages, "calibrate_model", lambda *a, **k: _negate(calibrate_original(*a, **k)))

    def repairing(self):
        result = run_original(self)
        _negate(self.qmodel)
        return result

    monkeypatch.setattr(Reconstructor, "run", repairing)
    out = str(tmp_path / "better")
    code, table, err = _run(FAST + ["--method", "qdrop", "--out", out, "--cache-dir", ""], capsys)
    assert code == 0
    kept = json.load(open(os.path.join(out, "report.json")))["kept"]
    assert kept["kept"] == "tuned" and kept["warning"] is None and "warning" not in err
    assert kept["tuned"]["lds"] < kept["start"]["lds"]
    assert "kept: the tuned model" in table and "WARNING" not in table
    base = registry.load("ganet-s")
    assert _same_model(load_quantized(base, os.path.join(out, "quantized.pt")),
                       load_quantized(base, os.path.join(out, "tuned.pt")))


def test_default_run_returns_a_model_not_further_from_fp_than_its_start(capsys, tmp_path):
    out = str(tmp_path / "sf")
    code, table, err = _run(FAST + ["--out", out], capsys)
    assert code == 0
    kept = json.load(open(os.path.join(out, "report.json")))["kept"]
    chosen = kept["tuned"] if kept["kept"] == "tuned" else kept["start"]
    assert chosen["lds"] <= kept["start"]["lds"]
    assert kept["kept"] == ("tuned" if kept["tuned"]["lds"] <= kept["start"]["lds"] else "start")
