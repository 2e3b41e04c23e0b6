"""``python -m selfocus_ext.tune`` and ``python -m selfocus_ext.evaluate --model``: runs on the ci budget,
outputs, resume, and one clear error line for each bad argument."""
import json
import os

import pytest

from selfocus_ext import evaluate as evaluate_cli
from selfocus_ext import tune
from selfocus_ext.recon import Reconstructor
from selfocus_ext.data.layouts import write_culane

FAST = ["--budget", "ci", "--calib", "8", "--test", "16", "--quiet"]


def run(args, capsys):
    code = tune.main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,message", [
    (["--model", "resnet-50"], "unknown model"),
    (["--bits", "w3a9"], "--bits"),
    (["--bits", "four"], "--bits"),
    (["--method", "gptq"], "unknown method"),
    (["--budget", "forever"], "unknown budget"),
    (["--data", "kitti:/tmp"], "--data must be"),
    (["--calib", "0"], "--calib must be positive"),
    (["--keep-prob", "1.5"], "--keep-prob"),
    (["--lam", "nan"], "--lam must be a positive finite number"),
    (["--lam", "inf"], "--lam must be a positive finite number"),
    (["--top-k", "4"], "--top-k 4: ganet-s has 3 heads"),
    (["--seed", str(2**70)], "--seed must be in [0, 2**63)"),
    (["--calib", str(2**70)], "at most 100000 calibration images"),
    (["--weight-observer", "kl"], "--weight-observer: unknown observer 'kl'"),
    (["--v-lr", "-1"], "--v-lr must be a finite number >= 0"),
    (["--step-lr", "nan"], "--step-lr must be a finite number >= 0"),
])
def test_bad_arguments_get_one_line_and_exit_2(args, message, capsys, tmp_path):
    code, out, err = run(args + ["--out", str(tmp_path / "r")], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_out_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("not a run")
    code, out, err = run(["--out", str(f)], capsys)
    assert code == 2 and "is a file; give a directory" in err and f.read_text() == "not a run"


def test_data_path_that_is_not_a_layout(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    for kind in ("culane", "tusimple"):
        code, _, err = run(["--data", f"{kind}:{tmp_path / 'empty'}", "--out", str(tmp_path / "r")], capsys)
        assert code == 2 and f"not a {'CULane' if kind == 'culane' else 'TuSimple'} layout" in err
    code, _, err = run(["--data", f"culane:{tmp_path / 'missing'}", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "not a directory" in err


def test_sf_run_writes_its_outputs_and_resume_refuses_other_runs(capsys, tmp_path):
    out = str(tmp_path / "sf")
    code, table, _ = run(FAST + ["--out", out, "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0
    for name in ("report.json", "report.md", "quantized.pt", "curves.png", "selection.png", "calibrated.pt"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert any(f.startswith("lanes-0-") and f.endswith(".png") for f in os.listdir(out))
    assert not os.path.exists(os.path.join(out, "checkpoint.pt"))
    report = json.load(open(os.path.join(out, "report.json")))
    stages = [r["stage"] for r in report["results"]]
    assert stages == ["FP", "calibration only", "tuned (sf)"]
    assert report["results"][1]["lds"] >= 0 and report["selection"]
    assert "FP" in table and "time per stage" in table and "normal" in table
    # the same --out without --resume is refused; with --resume the finished run re-reports
    code, _, err = run(FAST + ["--out", out], capsys)
    assert code == 2 and "holds another run" in err
    code, table2, _ = run(FAST + ["--out", out, "--resume"], capsys)
    assert code == 0 and table2 == table
    code, _, err = run(FAST + ["--out", out, "--resume", "--bits", "w8a8"], capsys)
    assert code == 2 and "other settings" in err
    # the saved model evaluates alone
    code = evaluate_cli.main(["--model", "ganet-s", "--quantized", os.path.join(out, "quantized.pt"), "--test", "16",
                              "--quiet"])
    text = capsys.readouterr().out
    returned = report["results"][2 if report["kept"]["kept"] == "tuned" else 1]  # the held-out check's choice
    assert code == 0 and f"{returned['f1']:.2f}" in text


def run_interrupted(args, iterations, capsys, monkeypatch):
    """Runs the tune command with tuning interrupted after ``iterations`` iterations (as by Ctrl-C)."""
    original = Reconstructor.run

    def interrupted(self):
        self.stop_after = iterations
        return original(self)

    monkeypatch.setattr(Reconstructor, "run", interrupted)
    try:
        return run(args, capsys)
    finally:
        monkeypatch.setattr(Reconstructor, "run", original)


def test_interrupted_tuning_resumes_from_its_checkpoint(capsys, tmp_path, monkeypatch):
    out = str(tmp_path / "q")
    args = FAST + ["--method", "qdrop", "--out", out]
    code, _, err = run_interrupted(args, 7, capsys, monkeypatch)
    assert code == 130 and "--resume" in err and os.path.isfile(os.path.join(out, "checkpoint.pt"))
    code, _, err = run(args + ["--resume"], capsys)
    assert code == 0 and "resuming tuning" in err
    straight = str(tmp_path / "q2")
    assert run(FAST + ["--method", "qdrop", "--out", straight], capsys)[0] == 0
    a = json.load(open(os.path.join(out, "report.json")))["results"][2]
    b = json.load(open(os.path.join(straight, "report.json")))["results"][2]
    assert a["f1"] == b["f1"] and a["lds"] == b["lds"]


def test_calibration_only_method_on_a_culane_tree(capsys, tmp_path):
    root = str(tmp_path / "culane")
    write_culane(root, 12, seed=1, split="test")
    write_culane(root, 6, seed=2, split="train")
    code, table, _ = run(["--method", "omse", "--data", f"culane:{root}", "--budget", "ci", "--calib", "4", "--quiet",
                          "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and "calibration only" in table and "tuned" not in table


def test_fp_lanes_are_cached_across_runs(capsys, tmp_path):
    cache = str(tmp_path / "cache")
    args = FAST + ["--method", "omse", "--cache-dir", cache]
    assert run(args + ["--out", str(tmp_path / "a")], capsys)[0] == 0
    assert run(args + ["--out", str(tmp_path / "b")], capsys)[0] == 0
    a, b = (json.load(open(str(tmp_path / d / "progress.json"))) for d in "ab")
    assert "evaluate fp" in a["seconds"] and "evaluate fp (cached)" in b["seconds"]
    assert "calibration" in a["seconds"] and "calibration + evaluation (cached)" in b["seconds"]
    assert a["fp"] == b["fp"] and a["calibrated"] == b["calibrated"]
    assert len([f for f in os.listdir(cache) if f.startswith("fp-lanes-ganet-s-")]) == 1
    # the cached calibrated model is the same model: tuning from it gives what tuning from a fresh one gives
    assert run(args[:-4] + ["--method", "qdrop", "--cache-dir", cache, "--out", str(tmp_path / "q1")], capsys)[0] == 0
    assert run(args[:-4] + ["--method", "qdrop", "--cache-dir", cache, "--out", str(tmp_path / "q2")], capsys)[0] == 0
    q1, q2 = (json.load(open(str(tmp_path / d / "progress.json"))) for d in ("q1", "q2"))
    assert "calibration + evaluation (cached)" in q2["seconds"] and q1["tuned"] == q2["tuned"]
    assert run(args[:-4] + ["--method", "aciq", "--cache-dir", cache, "--out", str(tmp_path / "x")], capsys)[0] == 0
    x = json.load(open(str(tmp_path / "x" / "progress.json")))
    assert "calibration" in x["seconds"]  # other observers: another calibration
    # another test-set size is another entry
    assert run(args + ["--out", str(tmp_path / "c"), "--test", "8"], capsys)[0] == 0
    assert len([f for f in os.listdir(cache) if f.startswith("fp-lanes-ganet-s-")]) == 2


def test_first_and_last_layers_at_the_run_bits(capsys, tmp_path):
    from selfocus_ext.models import registry
    from selfocus_ext.quant import load_quantized, quant_layers

    out = str(tmp_path / "edges")
    code, table, _ = run(FAST + ["--method", "omse", "--out", out, "--first-last-at-bits"], capsys)
    assert code == 0 and "first layer and heads also at these bits" in table
    q = load_quantized(registry.load("ganet-s"), os.path.join(out, "quantized.pt"))
    bits = {n: (l.weight_quantizer.bits, l.input_quantizer.bits) for n, l in quant_layers(q).items()}
    assert bits["backbone.stem.0"] == (4, 4) and bits["hm.1"] == (4, 4)
    assert json.load(open(os.path.join(out, "run.json")))["first_last_8bit"] is False


def test_lsq_qat_runs_as_a_method(capsys, tmp_path):
    out = str(tmp_path / "qat")
    code, table, _ = run(FAST + ["--method", "lsq-qat", "--out", out], capsys)
    assert code == 0 and "tuned (lsq-qat)" in table and "tuning iterations: 6" in table
    root = str(tmp_path / "culane")
    write_culane(root, 4, seed=1, split="test")
    write_culane(root, 4, seed=2, split="train")
    code, _, err = run(FAST + ["--method", "lsq-qat", "--data", f"culane:{root}", "--out", str(tmp_path / "q2")], capsys)
    assert code == 2 and "labelled generated scenes" in err


def test_export_onnx_joins_the_run_and_its_report(capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = str(tmp_path / "e")
    code, table, _ = run(FAST + ["--method", "omse", "--bits", "w8a8", "--out", out, "--export", "onnx",
                                 "--export-format", "qcdq"], capsys)
    assert code == 0 and os.path.isfile(os.path.join(out, "model.onnx"))
    assert "onnxruntime (qcdq)" in table
    rows = {r["stage"]: r for r in json.load(open(os.path.join(out, "report.json")))["results"]}
    assert abs(rows["onnxruntime (qcdq)"]["f1"] - rows["calibration only"]["f1"]) <= 10.0  # 16 scenes
    assert abs(rows["onnxruntime (qcdq)"]["f1"] - rows["int32 biases (PyTorch)"]["f1"]) <= 5.0
    assert rows["onnxruntime (qcdq)"]["lds"] is not None


def test_evaluate_model_errors(capsys, tmp_path):
    assert evaluate_cli.main(["--model", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert evaluate_cli.main(["--model", "ganet-s", "--quantized", str(tmp_path / "x.pt")]) == 2
    assert "no file" in capsys.readouterr().err


def test_report_notes_the_peak_memory_by_the_end_of_each_stage(capsys, tmp_path):
    """report.json's peak_mb: per timed stage, the process's peak resident memory when it ended (the
    kernel's running maximum, so never decreasing in stage order); bad --tuning-memory is a usage error."""
    out = tmp_path / "r"
    code, _, _ = run(["--model", "lstr-s", "--method", "sf", "--out", str(out), "--cache-dir", ""] + FAST, capsys)
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["peak_mb"]) == set(report["seconds"])
    peaks = list(report["peak_mb"].values())
    assert all(p > 0 for p in peaks) and peaks == sorted(peaks)
    code, _, err = run(["--tuning-memory", "lots", "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "--tuning-memory: expected a size" in err
