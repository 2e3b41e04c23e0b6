"""python -m selfocus_ext.evaluate on directories in the real CULane and TuSimple layouts."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from selfocus_ext.lanes import format_culane_lines
from selfocus_ext.metrics import tusimple


def write_culane(root, pred_dir, images):
    """images: list of (relative image path, gt lanes, predicted lanes or None for a missing file)."""
    os.makedirs(os.path.join(root, "list", "test_split"), exist_ok=True)
    by_scenario = {}
    for path, scenario, gt, pred in images:
        stem = os.path.splitext(path)[0]
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, stem + ".lines.txt"), "w") as f:
            f.write(format_culane_lines(gt))
        if pred is not None:
            os.makedirs(os.path.dirname(os.path.join(pred_dir, path)), exist_ok=True)
            with open(os.path.join(pred_dir, stem + ".lines.txt"), "w") as f:
                f.write(format_culane_lines(pred))
        by_scenario.setdefault(scenario, []).append("/" + path)
    for i, (scenario, paths) in enumerate(sorted(by_scenario.items())):
        with open(os.path.join(root, "list", "test_split", f"test{i}_{scenario}.txt"), "w") as f:
            f.write("\n".join(paths) + "\n")


def run(*args):
    return subprocess.run([sys.executable, "-m", "selfocus_ext.evaluate", *args], capture_output=True, text=True)


def test_culane_cli(tmp_path):
    lane = np.array([[500, 590], [520, 500], [560, 400], [620, 300]], np.float32)
    other = lane + np.array([400, 0], np.float32)
    root, pred = str(tmp_path / "culane"), str(tmp_path / "pred")
    write_culane(root, pred, [
        ("driver_1/a.MP4/00000.jpg", "normal", [lane, other], [lane, other]),
        ("driver_1/a.MP4/00030.jpg", "normal", [lane], None),  # missing prediction file: no lanes
        ("driver_2/b.MP4/00000.jpg", "cross", [], [lane]),
    ])
    out = run("culane", "--pred", pred, "--gt", root, "--mf1", "--quiet")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line and not line.startswith(("scenario", "mF1"))}
    assert rows["normal"][1:4] == ["2", "0", "1"]
    assert rows["cross"][2] == "1"
    assert rows["total"][1:4] == ["2", "1", "1"]
    assert "mF1" in out.stdout
    # an image listed without ground truth is an error, not a silent skip
    with open(os.path.join(root, "list", "extra.txt"), "w") as f:
        f.write("/driver_9/none.jpg\n")
    bad = run("culane", "--pred", pred, "--gt", root, "--list", os.path.join(root, "list", "extra.txt"), "--quiet")
    assert bad.returncode == 2 and "no ground truth" in bad.stderr


def test_tusimple_cli(tmp_path):
    h = list(range(160, 720, 10))
    lanes = [[300.0] * len(h), [600.0] * len(h)]
    gt = tmp_path / "test_label.json"
    gt.write_text(json.dumps({"raw_file": "clips/0530/1.jpg", "lanes": lanes, "h_samples": h}) + "\n")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"raw_file": "clips/0530/1.jpg", "lanes": lanes, "run_time": 3}) + "\n")
    out = run("tusimple", "--pred", str(pred), "--gt", str(gt))
    assert out.returncode == 0, out.stderr
    assert "Accuracy 1.000000" in out.stdout and "F1 1.000000" in out.stdout


def test_culane_cli_rejects_bad_arguments_in_one_line(tmp_path):
    lane = np.array([[500, 590], [520, 500], [560, 400]], np.float32)
    root, pred = str(tmp_path / "culane"), str(tmp_path / "pred")
    write_culane(root, pred, [("driver_1/a.MP4/00000.jpg", "normal", [lane], [lane])])
    cases = [
        (["--iou", "nan"], "--iou must be in [0, 1)"),
        (["--iou", "1.5"], "--iou must be in [0, 1)"),
        (["--iou", "-1"], "--iou must be in [0, 1)"),
        (["--lane-width", "0"], "--lane-width must be in 2..1024"),
        (["--width", "0"], "--width must be in 1..65536"),
    ]
    for extra, message in cases:
        r = run("culane", "--pred", pred, "--gt", root, *extra)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
    r = run("culane", "--pred", str(tmp_path / "nowhere"), "--gt", root)
    assert r.returncode == 2 and "--pred: no directory" in r.stderr
    # a byte that is not text in a lane file: the file is named
    bad = os.path.join(pred, "driver_1", "a.MP4", "00000.lines.txt")
    with open(bad, "wb") as f:
        f.write(b"500 590 \xff\xfe 400\n")
    r = run("culane", "--pred", pred, "--gt", root)
    assert r.returncode == 2 and bad in r.stderr and "is not text" in r.stderr and "Traceback" not in r.stderr


def test_tusimple_cli_rejects_empty_ground_truth(tmp_path):
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text("")
    pred.write_text("")
    r = run("tusimple", "--pred", str(pred), "--gt", str(gt))
    assert r.returncode == 2 and "no ground-truth records" in r.stderr


@pytest.mark.parametrize("record,message", [
    ({"raw_file": "a.jpg", "lanes": [[300.0] * 3], "run_time": 3}, "a predicted lane does not have one value per"),
    ({"raw_file": "a.jpg", "lanes": None, "run_time": 3}, "lanes must be a list of lanes"),
    ({"raw_file": "a.jpg", "lanes": [[300.0] * 56], "run_time": "fast"}, "run_time must be a finite number"),
    ({"raw_file": 7, "lanes": [], "run_time": 3}, "raw_file must be a string"),
    ({"raw_file": ["a.jpg"], "lanes": [], "run_time": 3}, "raw_file must be a string"),
    ({"raw_file": "a.jpg", "lanes": [[300.0, "x"] + [1.0] * 54], "run_time": 3}, "lanes must be a list of lanes"),
    ({"raw_file": "a.jpg", "lanes": []}, "lacks 'run_time'"),
    (5, "expected a JSON object, got int"),
])
def test_tusimple_bad_prediction_records_name_file_and_line(record, message, tmp_path):
    h = list(range(160, 720, 10))
    gt = tmp_path / "test_label.json"
    gt.write_text(json.dumps({"raw_file": "a.jpg", "lanes": [[300.0] * len(h)], "h_samples": h}) + "\n")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(record) + "\n")
    with pytest.raises(tusimple.TuSimpleFormatError, match=message) as info:
        tusimple.evaluate_files(str(pred), str(gt))
    assert f"{pred}:1" in str(info.value)


def test_tusimple_gt_lane_shorter_than_h_samples(tmp_path):
    h = list(range(160, 720, 10))
    gt = tmp_path / "test_label.json"
    gt.write_text(json.dumps({"raw_file": "a.jpg", "lanes": [[300.0] * 10], "h_samples": h}) + "\n")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"raw_file": "a.jpg", "lanes": [], "run_time": 1}) + "\n")
    r = run("tusimple", "--pred", str(pred), "--gt", str(gt))
    assert r.returncode == 2 and f"{gt}:1: a lane does not have one value per h_sample" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("matcher,lanes", [("official", 1025), ("exact", 65)])
def test_culane_too_many_lanes_names_the_file(matcher, lanes, tmp_path):
    lane = np.array([[500, 590], [520, 500], [560, 400]], np.float32)
    root, pred = str(tmp_path / "culane"), str(tmp_path / "pred")
    write_culane(root, pred, [("driver_1/a.MP4/00000.jpg", "normal", [lane], [lane])])
    bad = os.path.join(pred, "driver_1", "a.MP4", "00000.lines.txt")
    with open(bad, "w") as f:
        f.write("500 590 520 400\n" * lanes)
    r = run("culane", "--pred", pred, "--gt", root, "--matcher", matcher, "--quiet")
    assert r.returncode == 2 and f"{bad}: {lanes} lanes" in r.stderr and "Traceback" not in r.stderr
