"""The TuSimple metric on hand-built cases with known answers."""
import json
import math

import numpy as np
import pytest

from selfocus_ext.metrics import tusimple

H = list(range(160, 720, 10))  # 56 rows


def vertical(x, missing=()):
    return [-2 if i in missing else float(x) for i in range(len(H))]


def slanted(x0, slope):
    return [x0 + slope * (y - 160) for y in H]


def test_perfect_prediction():
    gt = [vertical(300), vertical(600)]
    assert tusimple.bench(gt, gt, H, 10) == (1.0, 0.0, 0.0)


def test_threshold_is_20_px_over_cos_angle():
    gt = [vertical(300)]
    assert tusimple.bench([vertical(319)], gt, H, 0)[0] == 1.0
    acc, fp, fn = tusimple.bench([vertical(325)], gt, H, 0)
    assert (acc, fp, fn) == (0.0, 1.0, 1.0)
    # a 45-degree lane tolerates 20 / cos(45 deg) = 28.3 px
    g45 = [slanted(300, 1.0)]
    assert tusimple.lane_angle(np.array(g45[0]), np.array(H, float)) == pytest.approx(math.pi / 4)
    assert tusimple.bench([[x + 25 for x in g45[0]]], g45, H, 0)[0] == 1.0
    assert tusimple.bench([[x + 30 for x in g45[0]]], g45, H, 0)[0] == 0.0


def test_85_percent_rule_and_missing_points():
    gt = [vertical(300)]
    n = len(H)
    k = int(np.ceil(0.85 * n))  # points that must agree
    good = [300.0 if i < k else 500.0 for i in range(n)]
    bad = [300.0 if i < k - 1 else 500.0 for i in range(n)]
    assert tusimple.bench([good], gt, H, 0)[1:] == (0.0, 0.0)
    assert tusimple.bench([bad], gt, H, 0)[1:] == (1.0, 1.0)
    # rows where both lanes have no point agree (lane.py maps both to -100)
    gt2 = [vertical(300, missing=range(10))]
    assert tusimple.bench([vertical(300, missing=range(10))], gt2, H, 0)[0] == 1.0


def test_more_than_four_lanes_and_too_many_predictions():
    gt = [vertical(100 * i) for i in range(1, 6)]
    pred = gt[:4]  # one of five missed: forgiven, and the worst accuracy dropped
    acc, fp, fn = tusimple.bench(pred, gt, H, 0)
    assert (acc, fp, fn) == (1.0, 0.0, 0.0)
    assert tusimple.bench([vertical(1000 + i) for i in range(5)], [vertical(300), vertical(600)], H, 0) == (0.0, 0.0, 1.0)
    assert tusimple.bench(gt, gt, H, 250) == (0.0, 0.0, 1.0)  # over 200 ms


def test_files_and_errors(tmp_path):
    gt = [{"raw_file": f"clips/{i}.jpg", "lanes": [vertical(300), vertical(600)], "h_samples": H} for i in range(3)]
    pred = [{"raw_file": f"clips/{i}.jpg", "lanes": [vertical(300 + 30 * (i == 2)), vertical(600)], "run_time": 5} for i in range(3)]
    gf, pf = tmp_path / "gt.json", tmp_path / "pred.json"
    gf.write_text("\n".join(json.dumps(r) for r in gt))
    pf.write_text("\n".join(json.dumps(r) for r in pred))
    r = tusimple.evaluate_files(str(pf), str(gf))
    assert r.accuracy == pytest.approx((1 + 1 + 0.5) / 3)
    assert r.fp == pytest.approx(0.5 / 3) and r.fn == pytest.approx(0.5 / 3)
    assert r.f1 == pytest.approx(1 - 0.5 / 3)
    with pytest.raises(tusimple.TuSimpleFormatError, match="got 2 predictions for 3 test images"):
        tusimple.evaluate_records(pred[:2], gt)
    with pytest.raises(tusimple.TuSimpleFormatError, match="lacks 'run_time'"):
        tusimple.evaluate_records([{k: v for k, v in p.items() if k != "run_time"} for p in pred], gt)
    with pytest.raises(tusimple.TuSimpleFormatError, match="one value per h_sample"):
        tusimple.bench([[1.0, 2.0]], gt[0]["lanes"], H, 0)
    pf.write_text("{not json")
    with pytest.raises(tusimple.TuSimpleFormatError, match="not a JSON object"):
        tusimple.evaluate_files(str(pf), str(gf))
