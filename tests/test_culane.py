"""The CULane metric: hand-built cases against counts recorded from the official tool, IoUs against OpenCV's
rasterisation, both matchers against their Python ports."""
import json
import os

import numpy as np
import pytest

from selfocus_ext.metrics import culane

cv2 = pytest.importorskip("cv2", reason="the OpenCV reference needs opencv-python")
pytest.importorskip("scipy")
from selfocus_ext.metrics import culane_reference as ref  # noqa: E402


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


DATA = os.path.join(os.path.dirname(__file__), "data", "culane_official")
with open(os.path.join(DATA, "expected.json")) as _f:
    OFFICIAL = json.load(_f)


def _same_iou(ours, official):
    ours = np.asarray(ours, dtype=np.float64).ravel()
    official = np.asarray(official, dtype=np.float64)
    return ours.shape == official.shape and np.array_equal(np.isnan(ours), np.isnan(official)) and np.array_equal(
        ours[~np.isnan(ours)], official[~np.isnan(official)])


@pytest.mark.parametrize("case", sorted(OFFICIAL))
def test_counts_and_ious_equal_the_official_tool(case):
    """Each hand-built case (selfocus_ext/testing/culane_official/hand_cases.py) reproduces the official tool's counts and
    its IoUs to the last bit, NaN included, read from the files as the evaluate command reads them."""
    from selfocus_ext.data import culane_files

    want = OFFICIAL[case]
    list_file = os.path.join(DATA, "list", case + ".txt")
    preds, gts = culane_files.load_pairs(os.path.join(DATA, "pred"), os.path.join(DATA, "gt"), list_file)
    (m,) = culane.match_images(preds, gts)
    assert _same_iou(m.iou, want["iou"]), (m.iou, want["iou"])
    assert list(m.counts(want["threshold"])) == want["counts"]


def test_official_behaviours_named_by_the_cases():
    """What the cases are for: a NaN pair costs a true positive that the exact matcher keeps; the official
    matcher can differ from the maximum-total-IoU one; IoU equal to the threshold is not a match."""
    from selfocus_ext.data import culane_files

    def load(case):
        return culane_files.load_pairs(os.path.join(DATA, "pred"), os.path.join(DATA, "gt"),
                                       os.path.join(DATA, "list", case + ".txt"))

    preds, gts = load("nan_pair_loses_tp")
    assert culane.match_images(preds, gts)[0].counts() == (0, 2, 2)
    assert culane.match_images(preds, gts, matcher="exact")[0].counts() == (1, 1, 1)
    preds, gts = load("tolerant_matching")
    assert culane.match_images(preds, gts)[0].counts() != culane.match_images(preds, gts, matcher="exact")[0].counts()
    preds, gts = load("strict_threshold")
    (m,) = culane.match_images(preds, gts)
    assert m.counts(m.iou[0, 0]) == (0, 1, 1) and m.counts(np.nextafter(m.iou[0, 0], 0)) == (1, 0, 0)


def test_evaluate_command_prints_official_counts(capsys):
    from selfocus_ext import evaluate

    cases = ["nan_pair_loses_tp", "missing_prediction_file", "more_pred_than_gt"]
    lists = [os.path.join(DATA, "list", c + ".txt") for c in cases]
    assert evaluate.main(["culane", "--pred", os.path.join(DATA, "pred"), "--gt", os.path.join(DATA, "gt"),
                          "--list", *lists, "--quiet"]) == 0
    rows = {line.split()[0]: line.split()[1:4] for line in capsys.readouterr().out.splitlines()[1:]}
    for c in cases:
        assert [int(v) for v in rows[c]] == OFFICIAL[c]["counts"]
    tp, fp, fn = (sum(OFFICIAL[c]["counts"][i] for c in cases) for i in range(3))
    assert [int(v) for v in rows["total"]] == [tp, fp, fn]
    # the exact matcher is an option; with it the NaN pair no longer costs the true positive
    assert evaluate.main(["culane", "--pred", os.path.join(DATA, "pred"), "--gt", os.path.join(DATA, "gt"),
                          "--list", lists[0], "--quiet", "--matcher", "exact"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1:4] == ["1", "1", "1"]


def test_python_reference_agrees_with_the_official_cases():
    """The OpenCV + Python port (the benchmark's baseline) also gives the official counts. The official
    counts come from the tool built against OpenCV 4.6; OpenCV 5 draws segments that start near INT_MIN
    (coordinates beyond float32 or the int range) differently, so that case needs a 4.x cv2."""
    from selfocus_ext.data import culane_files

    for case, want in OFFICIAL.items():
        if case == "far_points" and not cv2.__version__.startswith("4."):
            continue
        preds, gts = culane_files.load_pairs(os.path.join(DATA, "pred"), os.path.join(DATA, "gt"),
                                             os.path.join(DATA, "list", case + ".txt"))
        assert list(ref.image_counts(gts[0], preds[0], want["threshold"])) == want["counts"], case


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
        # the numpy spline may round a sample differently in the last bit (and opencv-python may be another
        # OpenCV version than the official tool's); bit-exactness is held against the official tool above
        assert m.iou.shape == want.shape
        np.testing.assert_allclose(m.iou, want, atol=1e-6)
        assert m.counts(0.5) == ref.image_counts(g, p, 0.5)
    exact = culane.match_images(preds, gts, matcher="exact")
    for m, p, g in zip(exact, preds, gts):
        assert m.counts(0.5) == ref.image_counts(g, p, 0.5, matcher="exact")


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
    # repeated points make the official spline divide by zero: only the segment into the last point
    # (from INT_MIN) reaches the image, so the lane no longer matches itself
    # (the hand-built case "repeated_points" holds this to the official tool's IoU)
    assert 0 < ms[0].iou[0, 0] < 0.5
    assert ms[1].iou[0, 0] == 0.0 and ms[1].counts() == (0, 1, 1)  # fewer than 2 points: similarity 0
    assert ms[2].counts() == (0, 1, 1)  # an empty lane still counts as a prediction


def test_lanes_outside_the_image_have_nan_iou_and_far_values_are_fast():
    import time

    left = np.array([[-300, 590], [-310, 400], [-320, 200]], np.float32)
    below = np.array([[100, 700], [900, 720]], np.float32)
    (m,) = culane.match_images([[below]], [[left]])
    assert np.isnan(m.iou[0, 0]) and m.counts() == (0, 1, 1)
    # one 2000-point lane alternating between +-1e30 and +-1e9 (INT_MIN after rounding, or rows far above the
    # image): nothing is walked pixel by pixel outside the image
    ys = np.linspace(590, 0, 2000)
    wild = np.stack([np.where(np.arange(2000) % 2, 1e30, -1e9), ys], 1)
    t0 = time.perf_counter()
    culane.match_images([[wild, wild[:, ::-1].copy()]], [[left, wild]])
    assert time.perf_counter() - t0 < 5.0


def test_lines_files_read_as_the_official_tool_reads_them():
    from selfocus_ext.lanes.formats import parse_culane_lines

    assert parse_culane_lines("") == []
    assert [len(l) for l in parse_culane_lines("\n")] == [0]  # one blank line: one empty lane
    assert [len(l) for l in parse_culane_lines("1 2 3 4\n\n5 6 7 8")] == [2, 0, 2]
    assert [len(l) for l in parse_culane_lines("1 2 3 4\r\n5 6 7 8\r\n")] == [2, 2]  # \r is whitespace
    assert [len(l) for l in parse_culane_lines("1 2\r3 4\n")] == [2]  # only \n ends a line
    (far,) = parse_culane_lines("1e39 5 6 7\n")  # beyond float32: infinite, as Point2f makes it
    assert np.isinf(far[0, 0]) and far.dtype == np.float32
    # double first, then float32 (the official parse), not a direct float32 parse
    (lane,) = parse_culane_lines("0.1 590\n")
    assert lane[0, 0] == np.float32(0.1)


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
    with pytest.raises(ValueError, match="image 0, lane 0: coordinates must not be NaN"):
        culane.match_images([[np.array([[np.nan, 1.0], [2.0, 3.0]])]], [[]])
    with pytest.raises(ValueError, match="matcher must be one of official, exact, got 'best'"):
        culane.match_images([[]], [[]], matcher="best")
    with pytest.raises(RuntimeError, match="matcher must be 'official' or 'exact', got 'best'"):
        torch.ops.selfocus.culane_match(torch.zeros(0, 2), torch.tensor([0]), torch.tensor([0]), torch.zeros(0, 2),
                                        torch.tensor([0]), torch.tensor([0]), 1640, 590, 30, "best")
    pts = torch.zeros(3, 2)
    with pytest.raises(RuntimeError, match="pred_lanes must start at 0 and end at 3"):
        torch.ops.selfocus.culane_match(pts, torch.tensor([0, 2]), torch.tensor([0, 1]), pts, torch.tensor([0, 3]),
                                        torch.tensor([0, 1]), 1640, 590, 30)
    with pytest.raises(RuntimeError, match="lane_width must be in 2..1024"):
        torch.ops.selfocus.culane_match(pts, torch.tensor([0, 3]), torch.tensor([0, 1]), pts, torch.tensor([0, 3]),
                                        torch.tensor([0, 1]), 1640, 590, 1)
    many = [np.array([[i, 590.0], [i, 500.0]], np.float32) for i in range(65)]
    with pytest.raises(RuntimeError, match="at most 64 lanes per image"):
        culane.match_images([many], [[]], matcher="exact")
    assert culane.match_images([many], [[]])[0].counts() == (0, 65, 0)  # the official matcher has no such limit
    with pytest.raises(RuntimeError, match="at most 1024 lanes per image"):
        culane.match_images([many * 16], [[]])
