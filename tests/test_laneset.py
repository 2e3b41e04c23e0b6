"""LaneSet, frames and the lane file formats."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from selfocus_ext.lanes import (
    CULANE,
    TUSIMPLE,
    Frame,
    LaneFormatError,
    LaneSet,
    format_culane_lines,
    get_frame,
    lanes_from_tusimple,
    lanes_to_tusimple,
    parse_culane_lines,
    resample_points,
)


def test_frames():
    assert (CULANE.width, CULANE.height, CULANE.rows) == (1640, 590, 59)
    assert CULANE.ys[0] == 590 and CULANE.ys[-1] == 10 and np.all(np.diff(CULANE.ys) == -10)
    assert (TUSIMPLE.width, TUSIMPLE.height) == (1280, 720)
    assert TUSIMPLE.ys[0] == 160 and TUSIMPLE.ys[-1] == 710 and TUSIMPLE.rows == 56
    custom = Frame("mine", 800, 288, np.arange(280, 0, -8))
    assert get_frame(custom) is custom and get_frame("culane") is CULANE
    with pytest.raises(ValueError, match="unknown frame 'kitti'"):
        get_frame("kitti")
    with pytest.raises(ValueError, match="ys must be a non-empty 1-D array"):
        Frame("bad", 10, 10, [])


def test_resample_is_linear_inside_and_never_extrapolates():
    pts = np.array([[100.0, 500.0], [200.0, 400.0], [260.0, 340.0]])
    ys = np.array([550.0, 500.0, 450.0, 400.0, 370.0, 340.0, 300.0])
    xs = resample_points(pts, ys)
    assert np.isnan(xs[0]) and np.isnan(xs[-1])
    np.testing.assert_allclose(xs[1:6], [100.0, 150.0, 200.0, 230.0, 260.0])
    # unordered points and repeated rows (averaged)
    xs2 = resample_points(np.array([[260.0, 340.0], [100.0, 500.0], [210.0, 400.0], [190.0, 400.0]]), ys)
    np.testing.assert_allclose(xs2[1:6], xs[1:6])
    with pytest.raises(ValueError, match="finite"):
        resample_points(np.array([[np.inf, 1.0]]), ys)


def test_from_points_to_points_round_trip():
    lanes = [
        [np.array([[100.0, 590.0], [130.0, 500.0], [160.0, 410.0]]), np.array([[900.0, 590.0], [880.0, 300.0]])],
        [],
        [np.array([[500.0, 580.0], [520.0, 560.0]])],
    ]
    ls = LaneSet.from_points(lanes, frame="culane")
    assert ls.xs.shape == (3, 2, 59) and ls.images == 3
    assert ls.lane_counts().tolist() == [2, 0, 1]
    back = ls.to_points()
    assert [len(b) for b in back] == [2, 0, 1]
    np.testing.assert_allclose(back[0][0][0], [100.0, 590.0])
    assert back[0][1][:, 1].min() == 300.0 and back[0][1][:, 1].max() == 590.0
    np.testing.assert_allclose(back[2][0], [[500.0, 580.0], [510.0, 570.0], [520.0, 560.0]])
    assert torch.isnan(ls.scores[1]).all() and ls.scores[0].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="more than max_lanes=1"):
        LaneSet.from_points(lanes, frame="culane", max_lanes=1)
    with pytest.raises(ValueError, match="exactly one of frame or ys"):
        LaneSet.from_points(lanes)


def test_laneset_validation():
    ys = torch.arange(5.0)
    with pytest.raises(ValueError, match=r"xs must have shape \[B, L, R\] with R = len\(ys\) = 5"):
        LaneSet(ys, torch.zeros(2, 3, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"scores must have shape \[B, L\]"):
        LaneSet(ys, torch.zeros(2, 3, 5), torch.zeros(2))
    with pytest.raises(ValueError, match="infinite"):
        LaneSet(ys, torch.full((1, 1, 5), float("inf")), torch.zeros(1, 1))
    ls = LaneSet(ys, torch.zeros(4, 2, 5), torch.zeros(4, 2))
    assert ls[1].images == 1 and ls[1:3].images == 2 and ls[-1].images == 1


def test_culane_text_round_trip_and_errors():
    text = "100.5 590 120.25 580\n\n700 590 690 570 680 550\n"
    lanes = parse_culane_lines(text)
    assert [len(l) for l in lanes] == [2, 0, 3]  # a blank line is an (empty) lane
    again = parse_culane_lines(format_culane_lines(lanes))
    for a, b in zip(lanes, again):
        np.testing.assert_allclose(a, b)
    with pytest.raises(LaneFormatError, match=r"f.txt:1: odd number of values \(3\)"):
        parse_culane_lines("1 2 3", source="f.txt")
    with pytest.raises(LaneFormatError, match=r":2: non-numeric value 'abc'"):
        parse_culane_lines("1 2\nabc 4")
    with pytest.raises(LaneFormatError, match="infinite or NaN"):
        parse_culane_lines("inf 2")
    assert parse_culane_lines("") == []


def test_tusimple_lanes():
    h = [160, 170, 180, 190]
    lanes = lanes_from_tusimple([[-2, 10, 20, -2], [-2, -2, -2, -2]], h)
    np.testing.assert_allclose(lanes[0], [[10, 170], [20, 180]])
    assert lanes[1].shape == (0, 2)
    xs = np.array([[np.nan, 10.0, 20.0, np.nan], [np.nan] * 4])
    assert lanes_to_tusimple(xs) == [[-2, 10.0, 20.0, -2]]
    with pytest.raises(LaneFormatError, match="lane 0 has 3 values but h_samples has 4"):
        lanes_from_tusimple([[1, 2, 3]], h)
    json.dumps(lanes_to_tusimple(xs))  # JSON-serialisable


def test_import_in_a_fresh_interpreter():
    # importing the package first (before torch) must work
    out = subprocess.run([sys.executable, "-c", "import selfocus_ext, torch; print(torch.ops.selfocus.lane_distortion)"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
