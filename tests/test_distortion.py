"""The Lane Distortion Score against its numpy/scipy reference and on hand-built cases."""
import numpy as np
import pytest
import torch

from selfocus_ext.lanes import LaneSet, distortion_score
from selfocus_ext.lanes import reference as ref

ROWS = 32
YS = np.arange(590, 590 - 10 * ROWS, -10, dtype=np.float32)


def random_lanes(rng, images=20, lanes=4):
    base = rng.uniform(200, 1400, (images, lanes, 1)) + rng.uniform(-2, 2, (images, lanes, 1)) * (590 - YS)
    base = base.astype(np.float32)
    for b in range(images):
        for l in range(lanes):
            cut = rng.integers(0, ROWS // 2)
            base[b, l, ROWS - cut:] = np.nan  # lanes of different lengths
            if rng.uniform() < 0.15:
                base[b, l] = np.nan  # absent lanes
    return base


def test_matches_reference_on_random_sets():
    rng = np.random.default_rng(0)
    r = random_lanes(rng)
    for sigma in (0.5, 5.0, 20.0):
        p = r + rng.normal(0, sigma, r.shape).astype(np.float32)
        p[rng.uniform(size=p.shape) < 0.05] = np.nan
        got = distortion_score(torch.from_numpy(r), torch.from_numpy(p), torch.from_numpy(YS))
        want = ref.distortion_score(r, p, YS)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-3)


def test_monte_carlo_shape_equals_separate_calls():
    rng = np.random.default_rng(1)
    r = torch.from_numpy(random_lanes(rng, images=7))
    pert = r[None] + torch.randn(5, *r.shape) * 3
    ys = torch.from_numpy(YS)
    batched = distortion_score(r, pert, ys)
    assert batched.shape == (5, 7)
    for k in range(5):
        assert torch.equal(batched[k], distortion_score(r, pert[k], ys))


def test_identical_sets_score_zero():
    rng = np.random.default_rng(2)
    r = torch.from_numpy(random_lanes(rng))
    assert torch.count_nonzero(distortion_score(r, r.clone(), torch.from_numpy(YS))) == 0


def test_shifted_lane_scores_distance_sum_over_bounding_length():
    n, shift = 20, 4.0
    xs = 500 + 1.5 * (590 - YS[:n])
    r = np.full((1, 1, ROWS), np.nan, np.float32)
    r[0, 0, :n] = xs
    p = r + shift
    bound = np.hypot(xs.max() - xs.min(), YS[:n].max() - YS[:n].min())
    got = distortion_score(torch.from_numpy(r), torch.from_numpy(p), torch.from_numpy(YS)).item()
    assert got == pytest.approx(n * shift / bound, rel=1e-5)


def test_dropped_lane_costs_penalty_per_point():
    rng = np.random.default_rng(3)
    r = random_lanes(rng, images=1, lanes=3)
    r[0, :] = 700 + np.arange(3)[:, None] * 200.0 + 0 * YS  # three full lanes, well apart
    p = r.copy()
    p[0, 1] = np.nan
    got = distortion_score(torch.from_numpy(r), torch.from_numpy(p), torch.from_numpy(YS), penalty=2.5).item()
    assert got == pytest.approx(2.5 * ROWS)
    # an extra lane in the perturbed set costs the same way
    got2 = distortion_score(torch.from_numpy(p), torch.from_numpy(r), torch.from_numpy(YS), penalty=2.5).item()
    assert got2 == pytest.approx(2.5 * ROWS)


def test_scores_grow_with_perturbation_size():
    rng = np.random.default_rng(4)
    r = random_lanes(rng, images=50)
    noise = rng.normal(0, 1, (1,) + r.shape).astype(np.float32)
    sigmas = np.array([0.5, 1, 2, 4, 8, 16], np.float32)
    pert = r[None] + sigmas[:, None, None, None] * noise
    means = distortion_score(torch.from_numpy(r), torch.from_numpy(pert), torch.from_numpy(YS)).mean(dim=1)
    assert torch.all(means[1:] > means[:-1]), means


def test_laneset_arguments_and_row_check():
    rng = np.random.default_rng(5)
    r = random_lanes(rng, images=3)
    a = LaneSet(torch.from_numpy(YS), torch.from_numpy(r), torch.ones(3, 4))
    assert distortion_score(a, a).shape == (3,)
    other = LaneSet(torch.from_numpy(YS + 1), torch.from_numpy(r), torch.ones(3, 4))
    with pytest.raises(ValueError, match="different rows"):
        distortion_score(a, other)
    with pytest.raises(ValueError, match="ys is needed"):
        distortion_score(torch.from_numpy(r), torch.from_numpy(r))


def test_bad_input():
    ys = torch.from_numpy(YS)
    r = torch.zeros(2, 3, ROWS)
    with pytest.raises(RuntimeError, match=r"pert must score the 2 images of ref, got 3"):
        distortion_score(r, torch.zeros(3, 3, ROWS), ys)
    with pytest.raises(RuntimeError, match="same number of rows"):
        distortion_score(r, torch.zeros(2, 3, ROWS - 1), ys)
    with pytest.raises(RuntimeError, match="at most 16 lanes per image"):
        distortion_score(torch.zeros(2, 17, ROWS), torch.zeros(2, 3, ROWS), ys)
    with pytest.raises(RuntimeError, match="infinite coordinates"):
        distortion_score(r, torch.full((2, 3, ROWS), float("inf")), ys)
    with pytest.raises(RuntimeError, match="width must be positive"):
        distortion_score(r, r, ys, width=0)
    with pytest.raises(RuntimeError, match="ref must be float32"):
        torch.ops.selfocus.lane_distortion(r.double(), r, ys, 30.0, 1.0, 0.5)
    with pytest.raises(TypeError, match="ref must be a LaneSet or a tensor"):
        distortion_score([1, 2], r, ys)
    assert distortion_score(torch.zeros(0, 3, ROWS), torch.zeros(0, 3, ROWS), ys).shape == (0,)


def test_max_weight_matching_against_scipy():
    from scipy.optimize import linear_sum_assignment

    from selfocus_ext.lanes import max_weight_matching

    g = torch.Generator().manual_seed(0)
    for rows, cols in [(3, 5), (6, 2), (4, 4), (0, 3)]:
        w = torch.rand(rows, cols, generator=g)
        m = max_weight_matching(w)
        assert m.shape == (rows,)
        got = sum(float(w[r, c]) for r, c in enumerate(m.tolist()) if c >= 0)
        if rows and cols:
            rr, cc = linear_sum_assignment(w.numpy(), maximize=True)
            assert got == pytest.approx(float(w.numpy()[rr, cc].sum()), rel=1e-5)
    with pytest.raises(RuntimeError, match="at most 64 rows"):
        max_weight_matching(torch.zeros(65, 2))
