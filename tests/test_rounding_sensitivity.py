"""ulp_noise / rounding_spread: the float-rounding floor a runtime's F1 is judged against."""
import warnings

import pytest
import torch
from conftest import TwoLayers

from selfocus_ext.export.sensitivity import FLOAT32_ULP, rounding_spread, ulp_noise
from selfocus_ext.quant import calibrate, quantize_model


@pytest.fixture(scope="module")
def quantized():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 10, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = calibrate(quantize_model(TwoLayers().eval(), "w4a4", first_last_8bit=False), x)
    return q


def first_layer_codes(q, x):
    """The first quantized layer's input after its quantizer, in steps."""
    seen = []
    h = q.conv.input_quantizer.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        q(x)
    h.remove()
    return seen[0] / q.conv.input_quantizer.step.detach()


def boundary_input(q):
    """Inputs placed exactly half way between two quantization levels: the nearest level depends on the
    last bit, so a one-ulp push decides it."""
    step = float(q.conv.input_quantizer.step)
    g = torch.Generator().manual_seed(3)
    k = torch.randint(-3, 3, (4, 3, 10, 12), generator=g).float()
    return (k + 0.5) * step


def test_no_noise_changes_nothing_and_hooks_are_removed(quantized):
    x = torch.randn(4, 3, 10, 12)
    with torch.no_grad():
        ref = quantized(x)["y"]
        with ulp_noise(quantized, 0, seed=1):
            same = quantized(x)["y"]
        with ulp_noise(quantized, 4, seed=1):
            pass
        after = quantized(x)["y"]
    assert torch.equal(ref, same) and torch.equal(ref, after)


def test_noise_moves_boundary_values_by_one_step_and_depends_on_the_seed(quantized):
    x = boundary_input(quantized)
    clean = first_layer_codes(quantized, x)
    runs = {}
    for seed in (0, 0, 1):
        with ulp_noise(quantized, 1, seed=seed):
            runs.setdefault(seed, []).append(first_layer_codes(quantized, x))
    a, b = runs[0]
    assert torch.equal(a, b)  # the same seed, the same noise
    moved = (runs[0][0] - clean).abs()
    # a value at the boundary moves by at most one level (never more), and about 2/3 of the noise draws are
    # non-zero (k in -1..1), of which the ones pushing against the tie rule move
    assert float(moved.max()) == pytest.approx(1.0, abs=1e-4)
    assert 0.05 < float((moved > 0.5).float().mean()) < 0.9
    assert not torch.equal(runs[0][0], runs[1][0])


def test_noise_leaves_values_away_from_boundaries_alone(quantized):
    step = float(quantized.conv.input_quantizer.step)
    x = torch.randint(-3, 3, (4, 3, 10, 12)).float() * step + 0.25 * step  # a quarter step from the boundary
    clean = first_layer_codes(quantized, x)
    with ulp_noise(quantized, 64, seed=0):  # 64 ulp: far less than a quarter step
        noisy = first_layer_codes(quantized, x)
    assert torch.equal(clean, noisy)
    assert 64 * FLOAT32_ULP * 4 < 0.25


def test_rounding_spread_reports_clean_and_noisy_scores(quantized):
    x = boundary_input(quantized)

    def score(m):
        with torch.no_grad():
            return float(m(x)["y"].sum())

    r = rounding_spread(quantized, score, ulps=2, seeds=3)
    assert r["clean"] == pytest.approx(score(quantized))
    assert len(r["noisy"]) == 3 and r["low"] <= r["clean"] <= r["high"] and r["low"] < r["high"]


def test_bad_arguments_name_themselves(quantized):
    with pytest.raises(ValueError, match="ulps"):
        with ulp_noise(quantized, -1, seed=0):
            pass
    with pytest.raises(ValueError, match="no quantized layers"):
        with ulp_noise(TwoLayers(), 1, seed=0):
            pass
    with pytest.raises(ValueError, match="seeds"):
        rounding_spread(quantized, lambda m: 0.0, seeds=0)
