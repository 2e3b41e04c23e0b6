"""Generated scenes, the layout writers and the readers."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from selfocus_ext.data import (
    CULaneDataset,
    DatasetError,
    ModelInput,
    SyntheticLaneDataset,
    TuSimpleDataset,
    calibration_images,
    collate_lanes,
    synth,
    write_culane,
    write_tusimple,
)
from selfocus_ext.metrics import culane, tusimple
from selfocus_ext.lanes import CULANE


def test_deterministic_for_a_seed():
    a = synth.generate(123, "culane", size=(400, 160), crop_top=270)
    b = synth.generate(123, "culane", size=(400, 160), crop_top=270)
    c = synth.generate(124, "culane", size=(400, 160), crop_top=270)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1], equal_nan=True)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("scenario", synth.SCENARIOS)
@pytest.mark.parametrize("frame", ["culane", "tusimple"])
def test_every_scenario_renders(scenario, frame):
    for seed in range(3):
        scene = synth.sample_scene(seed, frame, scenario)
        assert scene.scenario == scenario
        img = synth.render(scene, (400, 160), crop_top=scene.frame.height * 0.45).image
        assert img.shape == (160, 400, 3) and img.dtype == np.uint8
        gt = synth.ground_truth(scene)
        assert gt.shape[1] == scene.frame.rows
        if scenario == "cross":
            assert gt.shape[0] == 0
        else:
            assert 2 <= gt.shape[0] <= 4
            assert np.all(np.nanmin(gt, axis=1) >= 0) and np.all(np.nanmax(gt, axis=1) <= scene.frame.width)


def test_ground_truth_does_not_depend_on_output_size():
    scene = synth.sample_scene(5, "culane", "curve")
    gt = synth.ground_truth(scene)
    synth.render(scene, (200, 80), crop_top=270)
    assert np.array_equal(gt, synth.ground_truth(scene), equal_nan=True)


def test_labels_lie_on_the_paint():
    checked = 0
    for seed in range(12):
        scene = synth.sample_scene(seed, "culane", "normal")
        r = synth.render(scene)  # full frame: output pixels are frame pixels
        labelled = sorted((l for l in scene.lines if l.slot is not None), key=lambda l: l.offset)
        for xs, line in zip(synth.ground_truth(scene), labelled):
            keep = ~np.isnan(xs)
            ys = CULANE.ys[keep].astype(int)
            ys = np.clip(ys, 0, 589)
            xs_i = np.clip(np.round(xs[keep]).astype(int), 0, 1639)
            near = np.max([r.paint[ys, np.clip(xs_i + d, 0, 1639)] for d in (-1, 0, 1)], axis=0)
            on = np.mean(near > 0.2)
            assert on >= (0.9 if not line.dashed else 0.1), (seed, line.dashed, on)
            checked += 1
    assert checked >= 24


def test_noline_and_crowd_keep_their_labels():
    for scenario in ("noline", "crowd"):
        scene = synth.sample_scene(3, "culane", scenario)
        assert synth.ground_truth(scene).shape[0] >= 2
    assert all(l.paint < 0.55 for l in synth.sample_scene(3, "culane", "noline").lines)


def test_segmentation_labels():
    scene = synth.sample_scene(9, "culane", "normal")
    seg = synth.segmentation(scene, (400, 160), crop_top=270)
    n = synth.ground_truth(scene).shape[0]
    assert seg.shape == (160, 400) and set(np.unique(seg)) == set(range(n + 1))


def _tree_hash(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            with open(os.path.join(dirpath, f), "rb") as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


def test_culane_write_read_round_trip_and_self_evaluation(tmp_path):
    root = str(tmp_path / "culane")
    paths = write_culane(root, 18, seed=4, split="test")
    ds = CULaneDataset(root, "test")
    assert len(ds) == 18 and ds.paths == paths
    seeds = synth.scene_seeds(4 * 2 + 1, 18)
    preds, gts = [], []
    for i in range(len(ds)):
        item = ds[i]
        scene = synth.sample_scene(seeds[i], "culane")
        assert item["image"].shape == (590, 1640, 3)
        assert item["scenario"] == scene.scenario
        np.testing.assert_allclose(item["xs"], synth.ground_truth(scene), atol=2e-3)
        gts.append(item["lanes"])
        preds.append(item["lanes"])
    res = culane.evaluate(preds, gts)[0.5]
    assert res.fp == 0 and res.fn == 0 and (res.tp == 0 or res.f1 == 1.0)
    assert os.path.isfile(os.path.join(root, "list", "test_split", "test7_cross.txt"))


def test_tusimple_write_read_round_trip(tmp_path):
    root = str(tmp_path / "tusimple")
    write_tusimple(root, 6, seed=2, split="test")
    ds = TuSimpleDataset(root, "test")
    assert len(ds) == 6
    item = ds[0]
    assert item["image"].shape == (720, 1280, 3)
    recs = [json.loads(l) for l in open(os.path.join(root, "test_label.json"))]
    preds = [dict(r, run_time=10) for r in recs]
    r = tusimple.evaluate_records(preds, recs)
    assert (r.accuracy, r.fp, r.fn) == (1.0, 0.0, 0.0)


def test_generate_cli_reproduces_files(tmp_path):
    outs = []
    for k in range(2):
        out = str(tmp_path / f"run{k}")
        proc = subprocess.run([sys.executable, "-m", "selfocus_ext.data", "generate", "--out", out, "--n", "5",
                               "--seed", "3", "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        outs.append(_tree_hash(out))
    assert outs[0] == outs[1]


def test_generate_refuses_to_overwrite_a_split(tmp_path):
    def gen(*extra):
        return subprocess.run([sys.executable, "-m", "selfocus_ext.data", "generate", "--out", out, "--n", "2",
                               "--quiet", *extra], capture_output=True, text=True)

    for frame, label in (("culane", "list/test.txt"), ("tusimple", "test_label.json")):
        out = str(tmp_path / frame)
        assert gen("--frame", frame).returncode == 0
        before = _tree_hash(out)
        r = gen("--frame", frame, "--seed", "9")
        assert r.returncode == 2 and label in r.stderr and "--force" in r.stderr
        assert _tree_hash(out) == before  # nothing touched
        assert gen("--frame", frame, "--split", "train").returncode == 0  # the other split is fine
        assert gen("--frame", frame, "--seed", "9", "--force").returncode == 0


def test_readers_reject_malformed_layouts(tmp_path):
    root = str(tmp_path / "c")
    write_culane(root, 3, seed=1, split="test")
    with pytest.raises(DatasetError, match="list file .*train.txt not found"):
        CULaneDataset(root, "train")
    ds = CULaneDataset(root, "test")
    first = ds.paths[0].lstrip("/")
    # corrupt image
    with open(os.path.join(root, first), "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(DatasetError, match="cannot decode image"):
        ds[0]
    # missing label / malformed label
    os.remove(os.path.join(root, os.path.splitext(ds.paths[1].lstrip("/"))[0] + ".lines.txt"))
    with pytest.raises(DatasetError, match="missing label"):
        ds[1]
    with open(os.path.join(root, os.path.splitext(ds.paths[2].lstrip("/"))[0] + ".lines.txt"), "w") as f:
        f.write("1 2 3\n")
    with pytest.raises(ValueError, match="odd number of values"):
        ds[2]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        CULaneDataset(root, list_file=str(empty))
    with pytest.raises(DatasetError, match="TuSimple label files not found"):
        TuSimpleDataset(str(tmp_path / "nothing"), "test")
    bad = tmp_path / "t"
    bad.mkdir()
    (bad / "test_label.json").write_text(json.dumps({"raw_file": "x.jpg", "lanes": []}) + "\n")
    with pytest.raises(DatasetError, match="lacks 'h_samples'"):
        TuSimpleDataset(str(bad), "test")


def test_model_input_transform():
    mi = ModelInput(CULANE, (400, 160), 270)
    img = synth.generate(1, "culane")[0]
    t = mi(img)
    assert t.shape == (3, 160, 400) and t.dtype == torch.float32
    u, v = mi.to_input(np.array([820.0]), np.array([430.0]))
    x, y = mi.to_frame(u, v)
    np.testing.assert_allclose([x[0], y[0]], [820.0, 430.0], atol=1e-4)
    with pytest.raises(ValueError, match="does not match the culane frame"):
        mi(np.zeros((720, 1280, 3), np.uint8))


@pytest.mark.parametrize("shape", [(5, 7, 3), (4, 5, 7, 3), (0, 5, 7, 3)])
def test_normalize_equals_the_plain_formula(shape):
    """The lookup-table normalisation gives exactly ((v / 255) - mean) / std in float32, channels first, also
    for non-contiguous and empty batches."""
    mi = ModelInput(CULANE, (400, 160), 270)
    rgb = np.random.default_rng(1).integers(0, 256, shape[:-1] + (6,), dtype=np.uint8)[..., ::2]  # strided
    t = torch.from_numpy(np.ascontiguousarray(rgb)).movedim(-1, -3).float().div_(255.0)
    want = (t - torch.tensor(mi.mean).view(3, 1, 1)) / torch.tensor(mi.std).view(3, 1, 1)
    got = mi.normalize(rgb)
    assert got.shape == want.shape and got.is_contiguous() and torch.equal(got, want)
    with pytest.raises(ValueError, match="rgb: expected uint8"):
        mi.normalize(rgb.astype(np.float32))


def test_synthetic_dataset_collate_and_calibration():
    ds = SyntheticLaneDataset(6, seed=3)
    item = ds[0]
    assert item["image"].shape == (3, 160, 400) and item["xs"].shape[1] == 59
    images, lanes, scen = collate_lanes([ds[i] for i in range(6)], CULANE.ys)
    assert images.shape == (6, 3, 160, 400) and lanes.xs.shape[0] == 6 and len(scen) == 6
    cal = calibration_images(4, seed=9)
    assert cal.shape == (4, 3, 160, 400) and torch.equal(cal, calibration_images(4, seed=9))
    with pytest.raises(ValueError, match="at least one image"):
        calibration_images(0)


@pytest.mark.parametrize("memo_bytes", [1 << 30, 0])
def test_evaluation_set_scenes_are_drawn_once_and_read_back_equal(monkeypatch, memo_bytes):
    from selfocus_ext.workflow import data as wd

    monkeypatch.setattr(wd, "SCENE_MEMO_BYTES", memo_bytes)
    mi = ModelInput(CULANE, (400, 160), 270)
    es = wd.evaluation_set(wd.DataSpec("synth"), 10, mi, seed=5)
    drawn = []
    real = SyntheticLaneDataset.__getitem__
    monkeypatch.setattr(SyntheticLaneDataset, "__getitem__", lambda self, i: drawn.append(i) or real(self, i))
    a, la = es.items(2, 6)
    la[0]["scenario"] = "changed by the caller"
    b, lb = es.items(2, 6)
    ds = SyntheticLaneDataset(10, seed=5, model_input=mi)
    assert torch.equal(a, b) and torch.equal(a, torch.stack([real(ds, i)["image"] for i in range(2, 6)]))
    assert lb[0]["scenario"] == real(ds, 2)["scenario"]
    assert drawn == ([2, 3, 4, 5] if memo_bytes else [2, 3, 4, 5] * 2)
    assert es.items(3, 3)[0].shape == (0, 3, 160, 400)
