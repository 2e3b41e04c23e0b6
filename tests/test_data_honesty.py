"""What a run is calibrated and scored on: a published model names its data, calibration never reads a test
image, and a short test run samples the whole test list."""
import numpy as np
import pytest

from selfocus_ext import evaluate as evaluate_cli
from selfocus_ext import tune
from selfocus_ext.data.layouts import write_culane
from selfocus_ext.workflow import data as wdata
from selfocus_ext.models import DEFAULT_INPUT


def test_a_published_model_without_data_is_refused(capsys, tmp_path):
    ckpt = tmp_path / "x.pth"
    ckpt.write_bytes(b"")
    code = tune.main(["--model", "scnn-r18", "--checkpoint", str(ckpt), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--data culane:ROOT" in err and "--data synth" in err
    assert not (tmp_path / "r").exists()
    code = evaluate_cli.main(["--model", "scnn-r18", "--checkpoint", str(ckpt)])
    err = capsys.readouterr().err
    assert code == 2 and "--data culane:ROOT" in err


def test_qat_on_a_published_model_is_refused_before_any_work(capsys, tmp_path):
    ckpt = tmp_path / "x.pth"
    ckpt.write_bytes(b"")
    code = tune.main(["--model", "condlane-r18", "--checkpoint", str(ckpt), "--data", "synth", "--method",
                      "lsq-qat", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "training targets" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_tree_without_a_training_split_is_not_calibrated_on_its_test_images(capsys, tmp_path):
    root = str(tmp_path / "culane")
    write_culane(root, 6, seed=1, split="test")
    code = tune.main(["--method", "omse", "--data", f"culane:{root}", "--budget", "ci", "--calib", "2",
                      "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "no training split (list/train.txt)" in err and "never from the test images" in err
    spec = wdata.parse_data(f"culane:{root}")
    with pytest.raises(ValueError, match="no training split"):
        wdata.calibration_set(spec, 2, 0, DEFAULT_INPUT)


def test_calibration_images_are_training_images(tmp_path):
    root = str(tmp_path / "culane")
    test_paths = write_culane(root, 5, seed=1, split="test")
    train_paths = write_culane(root, 7, seed=2, split="train")
    assert not set(test_paths) & set(train_paths)
    spec = wdata.parse_data(f"culane:{root}")
    calib = wdata.calibration_set(spec, 4, 0, DEFAULT_INPUT)
    train = wdata.CULaneDataset(root, "train", transform=DEFAULT_INPUT)
    test = wdata.CULaneDataset(root, "test", transform=DEFAULT_INPUT)
    train_inputs = [train[i]["image"] for i in range(len(train))]
    for x in calib:
        assert any(bool((x == t).all()) for t in train_inputs)
        assert not any(bool((x == test[i]["image"]).all()) for i in range(len(test)))


def test_a_short_test_run_samples_the_whole_list():
    chosen = wdata.scored_subset(1000, 50, seed=3)
    assert len(chosen) == 50 == len(set(chosen)) and chosen == sorted(chosen)
    assert chosen != list(range(50)) and max(chosen) > 800 and min(chosen) < 200
    assert chosen == wdata.scored_subset(1000, 50, seed=3)  # seeded: the same images each run
    assert wdata.scored_subset(10, None) == list(range(10)) == wdata.scored_subset(10, 20)


def test_the_evaluation_set_uses_the_seeded_choice(tmp_path):
    root = str(tmp_path / "culane")
    paths = write_culane(root, 9, seed=1, split="test")
    ev = wdata.evaluation_set(wdata.parse_data(f"culane:{root}"), 3, DEFAULT_INPUT, seed=5)
    _, labels = ev.items(0, ev.count)
    got = [lab["path"] for lab in labels]
    want = [paths[i] for i in wdata.scored_subset(9, 3, seed=5)]
    assert ev.count == 3 and [p.lstrip("/") for p in got] == [p.lstrip("/") for p in want]
    assert np.all(np.diff([paths.index(p) for p in got]) > 0)
