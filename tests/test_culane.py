"""The CULane metric: IoUs against OpenCV's rasterisation, counts against a scipy matching, hand-built cases."""
import os

import numpy as np
import pytest

from selfocus_ext.eval import culane

cv2 = pytest.importorskip("cv2", reason="the OpenCV reference needs opencv-python")
pytest.importorskip("scipy")
from selfocus_ext.eval import culane_reference as ref  # noqa: E402


def rand_lane(rng, n=None):
    n = n or int(rng.integers(3, 30))
    ys = np.arange(590, 590 - 10 * n, -10, dtype=np.float32)[:n]
    t = 590 - ys
    xs = rng.uniform(100, 1500) + rng.uniform(-2, 2) * t + rng.uniform(-0.003, 0.003) * t * t + rng.normal(0, 1, n)
    return np.stack([xs, ys], 1).astype(np.float32)


def random_images(rng, count):
    gts, preds = [], []
    for _ in range(count):
        g = [rand_lane(rng) for _ in range(rng.integers(0, 5))]
        p = [l + np.array([rng.normal(0, 12), 0], np.float32) for l in g[: rng.integers(0, len(g) + 1)]]
        p += [rand_lane(rng) for _ in range(rng.integers(0, 3))]
        gts.append(g)
        preds.append(p)
    return preds, gts


def test_iou_equals_opencv_rasterisation_and_counts_agree():
    rng = np.random.default_rng(11)
    preds, gts = random_images(rng, 60)
    # include lanes leaving the image, 2-point lanes and steep short lanes
    gts[0] = [np.array([[-50, 590], [40, 400], [120, 250]], np.float32), np.array([[800, 590], [700, 300]], np.float32)]
    preds[0] = [gts[0][0] + np.array([6, 0], np.float32), np.array([[805, 590], [702, 300]], np.float32)]
    matches = culane.match_images(preds, gts)
    for m, p, g in zip(matches, preds, gts):
        want = ref.iou_matrix(g, p)
        assert m.iou.shape == want.shape
        if want.size:
            np.testing.assert_allclose(m.iou, want, atol=1e-6)
        assert m.counts(0.5) == ref.image_counts(g, p, 0.5)


def test_hand_built_cases():
    lane = np.array([[500, 590], [520, 500], [560, 400], [620, 300]], np.float32)
    far = lane + np.array([200, 0], np.float32)
    near = lane + np.array([5, 0], np.float32)
    ms = culane.match_images([[lane], [near], [far], [], [lane, far]], [[lane], [lane], [lane], [lane], []])
    assert ms[0].iou[0, 0] == pytest.approx(1.0)
    assert [m.counts() for m in ms] == [(1, 0, 0), (1, 0, 0), (0, 1, 1), (0, 0, 1), (0, 2, 0)]
    # a stricter threshold turns the shifted lane into a miss
    assert ms[1].iou[0, 0] < 0.9 and ms[1].counts(0.9) == (0, 1, 1)


def test_short_lanes_repeated_points_and_empty_lanes():
    lane = np.array([[500, 590], [520, 500], [560, 400]], np.float32)
    repeated = np.array([[500, 590], [500, 590], [520, 500], [520, 500], [560, 400]], np.float32)
    one_point = np.array([[500, 590]], np.float32)
    empty = np.zeros((0, 2), np.float32)
    ms = culane.match_images([[repeated], [one_point], [empty]], [[lane], [lane], [lane]])
    assert ms[0].iou[0, 0] == pytest.approx(1.0)  # repeated points are dropped, not divided by
    assert ms[1].iou[0, 0] == 0.0 and ms[1].counts() == (0, 1, 1)  # fewer than 2 points: similarity 0
    assert ms[2].counts() == (0, 1, 1)  # an empty lane still counts as a prediction


def test_scenario_totals_and_mf1():
    rng = np.random.default_rng(12)
    a = random_images(rng, 10)
    b = random_images(rng, 10)
    cross = ([[rand_lane(rng)] for _ in range(3)], [[] for _ in range(3)])
    res = culane.evaluate_scenarios({"normal": a, "curve": b, "cross": cross}, thresholds=culane.MF1_THRESHOLDS)
    for t in culane.MF1_THRESHOLDS:
        tot = res["normal"][t] + res["curve"][t] + res["cross"][t]
        assert res["total"][t] == tot
    assert res["cross"][0.5].tp == 0 and res["cross"][0.5].fp == 3
    f1s = [res["total"][t].f1 for t in culane.MF1_THRESHOLDS]
    assert culane.mean_f1(res["total"]) == pytest.approx(np.mean(f1s))
    assert all(f1s[i] >= f1s[i + 1] for i in range(len(f1s) - 1))  # stricter IoU, fewer TPs
    table = culane.format_table(res)
    assert "normal" in table and "cross" in table and "total" in table


def test_bad_input():
    import torch

    with pytest.raises(ValueError, match="predictions for 1 images but ground truth for 2"):
        culane.match_images([[]], [[], []])
    with pytest.raises(ValueError, match="image 0, lane 0: coordinates must be finite"):
        culane.match_images([[np.array([[np.inf, 1.0], [2.0, 3.0]])]], [[]])
    pts = torch.zeros(3, 2)
    with pytest.raises(RuntimeError, match="pred_lanes must start at 0 and end at 3"):
        torch.ops.selfocus.culane_match(pts, torch.tensor([0, 2]), torch.tensor([0, 1]), pts, torch.tensor([0, 3]),
                                        torch.tensor([0, 1]), 1640, 590, 30)
    with pytest.raises(RuntimeError, match="lane_width must be in 2..1024"):
        torch.ops.selfocus.culane_match(pts, torch.tensor([0, 3]), torch.tensor([0, 1]), pts, torch.tensor([0, 3]),
                                        torch.tensor([0, 1]), 1640, 590, 1)
    many = [np.array([[i, 590.0], [i, 500.0]], np.float32) for i in range(65)]
    with pytest.raises(RuntimeError, match="at most 64 lanes per image"):
        culane.match_images([many], [[]])
