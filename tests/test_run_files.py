"""Run files: atomic writes, checksums, loading without running code from the file, and one clear line
naming the file when a resumed run finds one damaged."""
import os
import shutil

import pytest
import torch

from selfocus_ext import evaluate as evaluate_cli
from selfocus_ext import models, tune
from selfocus_ext.files import DamagedFileError, atomic_save, digest, load_checked, save_checked
from selfocus_ext.quant import load_quantized

from test_tune_cli import FAST, run, run_interrupted


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished calibration-only run (aciq: every stage but tuning)."""
    out = str(tmp_path_factory.mktemp("runs") / "aciq")
    assert tune.main(FAST + ["--method", "aciq", "--out", out]) == 0
    return out


def copy_run(src, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(src, dst)
    return dst


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


def flip_byte(path, where=0.8):
    data = bytearray(open(path, "rb").read())
    data[int(len(data) * where)] ^= 0x40
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("name", ["run.json", "progress.json", "lanes-fp.pt", "lanes-calibrated.pt", "calibrated.pt",
                                  "quantized.pt"])
def test_truncated_run_file_on_resume_is_one_line_naming_it(name, finished_run, tmp_path, capsys):
    out = copy_run(finished_run, tmp_path)
    truncate(os.path.join(out, name))
    code, _, err = run(FAST + ["--method", "aciq", "--out", out, "--resume"], capsys)
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # after the run's header line, one error line
    assert last.startswith("error: ") and "Traceback" not in err
    assert os.path.join(out, name) in last and ("damaged" in last or "cannot be read" in last)


def test_flipped_bytes_in_quantized_model_are_detected(finished_run, tmp_path, capsys):
    out = copy_run(finished_run, tmp_path)
    path = os.path.join(out, "quantized.pt")
    before = open(path, "rb").read()
    # flip bytes inside the tensor data until the file still loads but its content changed
    for where in (0.5, 0.6, 0.7, 0.8, 0.9):
        with open(path, "wb") as f:
            f.write(before)
        flip_byte(path, where)
        with pytest.raises(DamagedFileError, match="quantized.pt"):
            load_quantized(models.load("ganet-s"), path)
    code = evaluate_cli.main(["--model", "ganet-s", "--quantized", path, "--test", "4", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "quantized.pt" in err and err.count("\n") == 1


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_a_crafted_file_runs_no_code(tmp_path):
    marker = str(tmp_path / "code-ran")
    path = str(tmp_path / "quantized.pt")
    torch.save({"config": _RunsCode(marker), "state": {}, "sha256": "0"}, path)
    with pytest.raises(DamagedFileError, match="cannot be read"):
        load_quantized(models.load("ganet-s"), path)
    assert not os.path.exists(marker)


def test_checksum_covers_content_types_and_shapes():
    a = {"w": torch.arange(6.0), "cfg": {"bits": [4, 4], "name": "x"}}
    assert digest(a) == digest({"cfg": {"name": "x", "bits": [4, 4]}, "w": torch.arange(6.0)})
    assert digest(a) != digest({**a, "w": torch.arange(6.0).reshape(2, 3)})
    assert digest(a) != digest({**a, "w": torch.arange(6.0).double()})
    assert digest(a) != digest({**a, "cfg": {"bits": [4, 8], "name": "x"}})
    assert digest({"v": 1}) != digest({"v": 1.0}) != digest({"v": True})


def test_save_checked_round_trip_and_interrupted_write(tmp_path, monkeypatch):
    path = str(tmp_path / "f.pt")
    save_checked({"xs": torch.ones(3)}, path)
    assert torch.equal(load_checked(path, "")["xs"], torch.ones(3))
    real_save = torch.save

    def dies_half_way(obj, f, *args, **kw):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"xs": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(load_checked(path, "")["xs"], torch.ones(3))  # the old file, whole
    assert os.listdir(tmp_path) == ["f.pt"]  # no temporary left behind


def test_truncated_checkpoint_on_resume(capsys, tmp_path, monkeypatch):
    out = str(tmp_path / "q")
    args = FAST + ["--method", "qdrop", "--out", out]
    assert run_interrupted(args, 3, capsys, monkeypatch)[0] == 130
    ckpt = os.path.join(out, "checkpoint.pt")
    truncate(ckpt, 0.7)
    code, _, err = run(args + ["--resume"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and ckpt in last and "delete it to tune again" in last and "Traceback" not in err
