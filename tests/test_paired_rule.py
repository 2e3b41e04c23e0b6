"""The paired comparison rule of the results: per-seed differences, Student's t over seeds, the shared test
set's noise, and the rule's false-decision rate."""
import math

import numpy as np
import pytest

from selfocus_ext.workflow.bootstrap import (false_decision_rate, image_noise_of_mean, paired_verdict, seed_residuals,
                                             t975)


def test_t_quantiles():
    scipy = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 7, 30, 31, 45, 200):
        assert t975(df) == pytest.approx(float(scipy.t.ppf(0.975, df)), abs=2e-3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t975(0)


def test_verdict_by_hand():
    # three seeds +10.5, +3.4, +4.7: mean 6.2, sd 3.78; t(2) = 4.303 -> seed half-width 9.39
    v = paired_verdict([10.5, 3.4, 4.7], image_sd=0.2)
    sd = float(np.std([10.5, 3.4, 4.7], ddof=1))
    half = math.hypot(4.303 * sd / math.sqrt(3), 1.959964 * 0.2)
    assert v["diff"] == pytest.approx(6.2) and v["high"] - v["diff"] == pytest.approx(half)
    assert v["verdict"] == "undecided"  # three seeds this spread apart cannot decide at 95 %
    assert paired_verdict([2.0, 2.2, 1.9], 0.1)["verdict"] == "win"
    assert paired_verdict([-2.0, -2.2, -1.9], 0.1)["verdict"] == "loss"
    # a consistent difference smaller than the test set's noise stays undecided
    assert paired_verdict([0.3, 0.31, 0.29], 0.25)["verdict"] == "undecided"
    # one seed never decides
    assert paired_verdict([5.0], 0.0)["verdict"] == "undecided"
    with pytest.raises(ValueError, match="image_sd"):
        paired_verdict([1.0, 2.0], -1.0)


def _rows(rng, n, p_tp):
    tp = rng.binomial(4, p_tp, size=n)
    return np.stack([tp, 4 - tp, 4 - tp], 1)


def test_image_noise_shrinks_with_more_images_and_is_zero_for_identical_methods():
    rng = np.random.default_rng(0)
    small = [(_rows(rng, 200, 0.9), _rows(rng, 200, 0.9)) for _ in range(3)]
    big = [(_rows(rng, 3200, 0.9), _rows(rng, 3200, 0.9)) for _ in range(3)]
    s_small, s_big = image_noise_of_mean(small), image_noise_of_mean(big)
    assert 2.5 < s_small / s_big < 6.0  # about sqrt(16) = 4
    same = [(a, a.copy()) for a, _ in small]
    assert image_noise_of_mean(same) == 0.0
    with pytest.raises(ValueError, match="same N"):
        image_noise_of_mean([(small[0][0], small[0][1][:10])])


def test_residuals_and_false_decision_rate():
    r = seed_residuals([[1.0, 3.0], [5.0, 5.0, 8.0], [7.0]])
    assert len(r) == 5 and abs(r[:2].sum()) < 1e-12 and r[0] == pytest.approx(-1.0 * math.sqrt(2))
    rng = np.random.default_rng(1)
    normal = rng.normal(0, 1.0, 4000)
    rate = false_decision_rate(normal, seeds=3, image_sd=0.0, trials=4000)
    assert 0.03 < rate < 0.07  # the paired t-test's 5 % on normal noise
    # the shared test-set error is inside the interval: the rate stays near 5 % with it too
    assert false_decision_rate(normal, seeds=3, image_sd=1.0, trials=4000) < 0.08
    with pytest.raises(ValueError, match="two residuals"):
        false_decision_rate([1.0], 3, 0.1)
