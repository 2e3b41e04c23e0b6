"""Observers, quantizers, BatchNorm folding, model conversion, calibration, save/load."""
import warnings

import pytest
import torch
from torch import nn

from selfocus_ext import models
from selfocus_ext.quant import (
    ACIQObserver,
    EMAMSEObserver,
    MSEObserver,
    MinMaxObserver,
    calibrate,
    export_int_weights,
    fold_batchnorm,
    load_quantized,
    parse_bits,
    quant_layers,
    quantize_model,
    save_quantized,
)
from selfocus_ext.quant.observers import ACIQ_LAPLACE, ACIQ_LAPLACE_ONE_SIDED, MIN_SCALE, make_observer, mse_search
from conftest import FAMILIES, MID_MODELS, shipped_models


def test_aciq_clip_is_table_times_b():
    g = torch.Generator().manual_seed(0)
    b = 2.0
    x = torch.distributions.Laplace(0.0, b).sample((400000,))
    for bits in (2, 4, 8):
        obs = ACIQObserver(bits, signed=True)
        obs.observe(x)
        assert float(obs.clip) == pytest.approx(ACIQ_LAPLACE[bits] * b, rel=0.02)
        assert float(obs.scale()) == pytest.approx(float(obs.clip) / (2 ** (bits - 1) - 1))
    pos = x.abs()
    obs = ACIQObserver(4, signed=False)
    obs.observe(pos)
    b_pos = float((pos - pos.mean()).abs().mean())
    assert float(obs.clip) == pytest.approx(ACIQ_LAPLACE_ONE_SIDED[4] * b_pos, rel=1e-4)


def test_mse_search_finds_the_constructed_optimum():
    # many values exactly on the grid of scale 1 (levels -7..7) and one outlier at 10: clipping at 7
    # (shrink factor 0.70 of max |x|) quantizes everything but the outlier exactly
    levels = torch.arange(-7, 8, dtype=torch.float32).repeat(2000)
    x = torch.cat([levels, torch.tensor([10.0])])
    obs = MSEObserver(4, signed=True)
    obs.observe(x)
    assert float(obs.clip) == pytest.approx(7.0, abs=1e-4)
    assert float(obs.scale()) == pytest.approx(1.0, abs=1e-5)


def test_vectorised_search_equals_the_loop():
    import os
    import sys

    from selfocus_ext.testing.composites import mse_search_loop  # the benchmark's baseline, written plainly

    g = torch.Generator().manual_seed(1)
    w = torch.randn(12, 300, generator=g) * torch.rand(12, 1, generator=g)
    vec = mse_search(w, 4, True)
    loop = mse_search_loop(w, 4, True)
    torch.testing.assert_close(vec, loop, rtol=1e-6, atol=1e-7)


def test_lp4_observer_is_the_search_with_p_4_and_clips_less():
    import os
    import sys

    from selfocus_ext.testing.composites import mse_search_loop

    from selfocus_ext.quant.observers import LpObserver

    g = torch.Generator().manual_seed(3)
    u = torch.rand(8, 400, generator=g) - 0.5
    w = -torch.sign(u) * torch.log1p(-2 * u.abs())  # Laplace: heavy tails, which p = 2 clips
    obs = LpObserver(4, True, ch_axis=0)
    obs.observe(w)
    torch.testing.assert_close(obs.clip, mse_search_loop(w, 4, True, p=4.0), rtol=1e-6, atol=1e-7)
    p2 = mse_search(w, 4, True)
    assert bool((obs.clip >= p2).all()) and bool((obs.clip > p2).any())
    assert bool((obs.clip <= w.abs().amax(1)).all())


def test_ema_mse_and_minmax():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(5000, generator=g), 3 * torch.randn(5000, generator=g)
    ema = EMAMSEObserver(8, True)
    ema.observe(a)
    first = ema.clip.clone()
    ema.observe(b)
    second = mse_search(b.reshape(1, -1), 8, True)
    torch.testing.assert_close(ema.clip, 0.9 * first + 0.1 * second)
    mm = MinMaxObserver(8, True, ch_axis=1)
    mm.observe(torch.tensor([[1.0, -5.0], [-2.0, 3.0]]))
    assert mm.clip.tolist() == [2.0, 5.0]


def test_observer_errors_and_zero_channels():
    with pytest.raises(ValueError, match="NaN or inf"):
        MSEObserver(4, True).observe(torch.tensor([1.0, float("nan")]))
    for bad in (float("inf"), -float("inf"), float("nan")):  # anywhere in a large tensor, either sign
        x = torch.randn(3, 64, 50)
        x[2, 40, 7] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            MinMaxObserver(8, True, ch_axis=1).observe(x)
    with pytest.raises(ValueError, match="empty"):
        MinMaxObserver(4, True).observe(torch.empty(0))
    with pytest.raises(ValueError, match="bits must be an integer in 2..8"):
        MSEObserver(9, True)
    with pytest.raises(RuntimeError, match="no data observed"):
        MinMaxObserver(4, True).scale()
    w = torch.randn(3, 10)
    w[1] = 0
    obs = MSEObserver(4, True, ch_axis=0)
    obs.observe(w)
    s = obs.scale()
    assert s[1] == MIN_SCALE and bool((s > 0).all())


def _conv_bn_model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 5))
    for bn in (m[1], m[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return m.eval()


def test_batchnorm_folding_preserves_outputs():
    m = _conv_bn_model()
    x = torch.randn(4, 3, 4, 4)
    ref = m(x)
    folded = fold_batchnorm(m)
    assert folded == 2 and isinstance(m[1], nn.Identity)
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)


def test_generic_module_conversion_and_warnings():
    m = nn.Sequential(_conv_bn_model(), nn.LayerNorm(5))
    with pytest.warns(UserWarning, match="LayerNorm"):
        q = quantize_model(m, "w4a4")
    layers = quant_layers(q)
    assert len(layers) == 3
    bits = [l.weight_quantizer.bits for l in layers.values()]
    assert bits == [8, 4, 8]  # first and last layer at 8 bits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q2 = quantize_model(m, "w4a4", first_last_8bit=False, skip=["0.7"])
    assert [l.weight_quantizer.bits for l in quant_layers(q2).values()] == [4, 4]
    with pytest.raises(ValueError, match="bits must look like 'w4a4'"):
        quantize_model(m, "4bit")
    with pytest.raises(ValueError, match="bits must be an integer in 2..8"):
        parse_bits("w9a4")
    with pytest.raises(ValueError, match="no quantizable layer named"):
        quantize_model(m, "w4a4", skip=["nope"])


@pytest.fixture(scope="module")
def calib():
    from selfocus_ext.data import calibration_images

    return calibration_images(8, seed=3)


@pytest.mark.parametrize("name", [f"{f}-s" for f in FAMILIES] + shipped_models(MID_MODELS))
def test_zoo_models_convert_and_calibrate(name, calib):
    m = models.load(name)
    with torch.no_grad():
        ref = m(calib)
    errs = {}
    for bits, obs in (("w8a8", ("omse", "ema_mse")), ("w4a4", ("omse", "ema_mse")), ("w8a4", ("aciq", "aciq"))):
        q = quantize_model(m, bits, weight_observer=obs[0], act_observer=obs[1])
        calibrate(q, calib)
        with torch.no_grad():
            out = q(calib)
        errs[bits] = max(float((out[k] - ref[k]).norm() / ref[k].norm()) for k in ref)
        assert set(out) == set(ref)
    assert errs["w8a8"] < 0.1
    assert errs["w4a4"] > errs["w8a8"]


def test_calibration_is_deterministic_and_saves(calib, tmp_path):
    m = models.load("ganet-s")
    q1 = calibrate(quantize_model(m, "w4a4"), calib)
    q2 = calibrate(quantize_model(m, "w4a4"), calib)
    with torch.no_grad():
        o1, o2 = q1(calib), q2(calib)
    for k in o1:
        assert torch.equal(o1[k], o2[k])
    path = str(tmp_path / "q.pt")
    save_quantized(q1, path)
    q3 = load_quantized(models.build("ganet-s"), path)
    with torch.no_grad():
        o3 = q3(calib)
    for k in o1:
        assert torch.equal(o1[k], o3[k])
    ints = export_int_weights(q1)
    first = next(iter(ints.values()))
    assert first["weight"].dtype == torch.int8 and first["bits"] == 8
    inner = [v for v in ints.values() if int(v["bits"]) == 4][0]
    assert int(inner["weight"].max()) <= 7 and int(inner["weight"].min()) >= -8


def test_calibration_errors(calib):
    q = quantize_model(models.load("ganet-s"), "w4a4")
    with pytest.raises(ValueError, match="calibration set is empty"):
        calibrate(q, torch.empty(0, 3, 160, 400))
    bad = calib.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        calibrate(q, bad)
    with pytest.raises(RuntimeError, match="before calibration"):
        q(calib)


def test_default_weight_calibration_clips_only_above_4_bits():
    from selfocus_ext.quant.observers import DEFAULT_WEIGHT_OBSERVER, LOW_BITS

    g = torch.Generator().manual_seed(4)
    w = torch.randn(6, 200, generator=g)
    assert DEFAULT_WEIGHT_OBSERVER == "auto" and LOW_BITS == 4
    for bits in (2, 3, 4, 5, 8):
        obs = make_observer("auto", bits, True, ch_axis=0)
        obs.observe(w)
        expected = w.abs().amax(1) if bits <= 4 else mse_search(w, bits, True)
        torch.testing.assert_close(obs.clip, expected)
    q = quantize_model(models.build("ganet-s"), "w4a4")
    assert all(l.weight_quantizer.observer_name == "auto" for l in quant_layers(q).values())
