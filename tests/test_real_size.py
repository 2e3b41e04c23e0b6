"""python/real_size.py: the real-size plan, a cell run through a tune process (its own peak memory), and the
"Real size" section read from cell files."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import real_size  # noqa: E402
from real_size import RealCell  # noqa: E402


def test_the_plan_has_the_calibration_table_and_the_tuning_methods():
    cells = real_size.plan(["ufld-r18"], [0, 1])
    ids = {c.id for c in cells}
    assert len(cells) == 2 * (3 * 3 + 2 * 2)
    assert "ufld-r18-w8a8-omse-s0" in ids and "ufld-r18-w4a4-sf-s1" in ids
    assert not any(c.method in ("qdrop", "sf") and c.bits == "w8a8" for c in cells)


def test_trained_models_are_their_cards_and_the_checkpoint_may_sit_in_the_cache(tmp_path, monkeypatch):
    assert real_size.trained_models(str(tmp_path)) == []
    (tmp_path / "ufld-r18-synth.json").write_text(json.dumps({"command": "python python/train_published.py --model ufld-r18 --steps 3000"}))
    assert real_size.trained_models(str(tmp_path)) == ["ufld-r18"]
    assert real_size.trained_models(str(tmp_path / "none")) == []
    monkeypatch.setattr(real_size, "CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(real_size, "CACHED", str(tmp_path / "cache"))
    with pytest.raises(SystemExit, match="rebuild it: python python/train_published.py --model ufld-r18 --steps 3000"):
        real_size.checkpoint_file("ufld-r18")
    os.makedirs(tmp_path / "cache")
    (tmp_path / "cache" / "ufld-r18-synth.pth").write_bytes(b"")
    assert real_size.checkpoint_file("ufld-r18") == str(tmp_path / "cache" / "ufld-r18-synth.pth")


def test_a_cell_without_a_trained_checkpoint_stops_with_the_command_that_makes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(real_size, "CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(real_size, "CACHED", str(tmp_path / "cache"))
    with pytest.raises(SystemExit, match="train_published.py --model scnn-r18"):
        real_size.run_cell(RealCell("scnn-r18", "w8a4", "sf"), 0.01)


def test_the_section_reads_the_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(real_size, "CHECKPOINTS", str(tmp_path / "ck"))
    monkeypatch.setattr(real_size, "CELLS", str(tmp_path / "cells"))
    os.makedirs(tmp_path / "ck")
    (tmp_path / "ck" / "ufld-r18-synth.pth").write_bytes(b"")
    (tmp_path / "ck" / "ufld-r18-synth.json").write_text(json.dumps({"f1": {"total": 93.5}, "steps": 3000, "hours": 1.2,
                                                                     "input": [800, 288], "floor": 90.0, "at_floor": True}))
    assert real_size.section(0.01) == []

    def put(c, f1, **kw):
        path = real_size.cell_path(c, 0.01)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            json.dump(dict(id=c.id, f1=f1, method_seconds=kw.get("sec", 0.0), peak_mb=kw.get("peak", 0.0),
                           wall_seconds=600.0, machine="x86_64, 2 cores"), fh)

    put(RealCell("ufld-r18", "w8a8", "aciq"), 91.25)
    put(RealCell("ufld-r18", "w4a4", "sf", 0), 88.0, sec=420.0, peak=3072.0)
    put(RealCell("ufld-r18", "w4a4", "sf", 1), 89.0, sec=400.0, peak=3000.0)
    text = "\n".join(real_size.section(0.01))
    assert "| ufld-r18 | 93.50 | 3000 steps, 1.2 h, at 800x288 | 91.25 | - |" in text
    assert "| ufld-r18 | W4A4 | - | - | - | 88.50 ±0.50 (2) | - | - | 420 s | - | 3.0 GB |" in text
    assert "3 cells, 0.5 hours of wall time on x86_64, 2 cores" in text
    (tmp_path / "cells" / "f0.01" / real_size.READING).write_text("What the cells show, in words.\n")
    assert real_size.section(0.01)[-2] == "What the cells show, in words."


def test_check_scores_the_checkpoint_as_a_user_loads_it(tmp_path, monkeypatch):
    import train_published

    monkeypatch.setenv("SELFOCUS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ck"
    assert train_published.main(["--model", "ufld-r18", "--steps", "1", "--batch", "1", "--train-scenes", "2",
                                 "--eval-scenes", "2", "--workdir", str(tmp_path / "work"), "--out-dir", str(out)]) == 0
    monkeypatch.setattr(real_size, "CHECKPOINTS", str(out))
    below = real_size.check(["ufld-r18"], scenes=2)
    assert len(below) == 1 and "floor 90.00" in below[0]  # one training step: far below
    card = json.loads((out / "ufld-r18-synth.json").read_text())
    (out / "ufld-r18-synth.json").write_text(json.dumps({**card, "floor": 0.0}))
    assert real_size.check(["ufld-r18"], scenes=2) == []


def test_a_zoo_family_gets_its_small_and_mid_rows_beside(tmp_path, monkeypatch):
    import grid_plan

    monkeypatch.setattr(real_size, "CHECKPOINTS", str(tmp_path / "ck"))
    monkeypatch.setattr(real_size, "CELLS", str(tmp_path / "cells"))
    monkeypatch.setattr(grid_plan, "CELLS", str(tmp_path / "zoo"))
    os.makedirs(tmp_path / "ck")
    (tmp_path / "ck" / "scnn-r18-synth.pth").write_bytes(b"")
    (tmp_path / "ck" / "scnn-r18-synth.json").write_text(json.dumps({"f1": {"total": 96.31}, "steps": 2000, "hours": 3.0,
                                                                     "input": [400, 144], "floor": 98.04, "at_floor": False}))
    path = real_size.cell_path(RealCell("scnn-r18", "w4a4", "sf"), 0.01)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as fh:
        json.dump(dict(f1=97.0, method_seconds=900.0, peak_mb=6144.0, wall_seconds=1200.0, machine="m"), fh)
    zoo = grid_plan.cell_path(grid_plan.Cell("t1", "scnn-s", "w4a4", "sf"), 0.01)
    os.makedirs(os.path.dirname(zoo))
    with open(zoo, "w") as fh:
        json.dump(dict(f1=96.5, fp_f1=98.0, method_seconds=30.0), fh)
    text = "\n".join(real_size.section(0.01))
    assert "| scnn-s (zoo) | W4A4 | 98.00 | - | - | 96.50 | - | - | 30 s | - | - |" in text
    assert "| scnn-r18 | 96.31 (below its floor 98.04) | 2000 steps, 3.0 h, at 400x144 |" in text  # said, not hidden
    assert "| scnn-m (zoo) | W4A4 | - | - | - | - | - | - | - | - | - |" in text
    assert "| scnn-r18 | W4A4 | - | - | - | 97.00 | - | - | 900 s | - | 6.0 GB |" in text
    assert real_size.zoo_rows_for("ufld-r18") == []


def _put(c, f1, fp=98.0, counts=None, sec=60.0):
    path = real_size.cell_path(c, 0.01)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(dict(cell=dict(model=c.model, bits=c.bits, method=c.method, seed=c.seed, extra=list(c.extra)),
                       id=c.id, f1=f1, fp_f1=fp, method_seconds=sec, peak_mb=1024.0, wall_seconds=60.0,
                       machine="m", image_counts=counts or []), fh)


def test_the_stress_rule_probes_mildest_first_and_then_runs_the_methods_there(tmp_path, monkeypatch):
    monkeypatch.setattr(real_size, "CELLS", str(tmp_path / "cells"))
    m = "scnn-r18"
    assert real_size.stress_cells(m, [0, 1], 0.01) == []  # the W4A4 calibration decides: not run yet
    _put(RealCell(m, "w4a4", "calib"), 96.0)  # loses 2 F1: stress needed
    first = RealCell(m, "w4a4", "calib", 0, ("--first-last-at-bits",))
    assert real_size.stress_cells(m, [0, 1], 0.01) == [first]
    assert first.id == "scnn-r18-w4a4-calib-s0-first-last-at-bits"
    _put(first, 95.0)  # loses 3: the next probe
    _put(RealCell(m, "w4a3", "calib"), 90.0)  # loses 8: the setting
    cells = real_size.stress_cells(m, [0, 1], 0.01)
    assert [c.id for c in cells] == [first.id, "scnn-r18-w4a3-calib-s0", "scnn-r18-w4a3-qdrop-s0",
                                     "scnn-r18-w4a3-sf-s0", "scnn-r18-w4a3-calib-s1", "scnn-r18-w4a3-qdrop-s1",
                                     "scnn-r18-w4a3-sf-s1"]
    assert real_size.stress_setting(m, 0.01) == RealCell(m, "w4a3", "calib")
    assert {c.id for c in cells} <= {c.id for c in real_size.plan([m], [0, 1], 0.01)}
    _put(RealCell("resa-r18", "w4a4", "calib"), 80.0)  # loses 18: no stress setting
    assert real_size.stress_cells("resa-r18", [0], 0.01) == [] and real_size.stress_setting("resa-r18", 0.01) is None


def test_sf_minus_qdrop_follows_the_paired_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(real_size, "CELLS", str(tmp_path / "cells"))
    rows = [[1, 0, 0]] * 50 + [[0, 1, 1]] * 50
    sf = [RealCell("m", "w4a4", "sf", s) for s in (0, 1, 2)]
    qd = [RealCell("m", "w4a4", "qdrop", s) for s in (0, 1, 2)]
    for c, v in zip(sf, (90.0, 91.0, 90.5)):
        _put(c, v, counts=rows)
    for c, v in zip(qd, (85.0, 85.5, 85.2)):
        _put(c, v, counts=rows)
    got = real_size.sf_minus_qdrop([real_size.read(c, 0.01) for c in sf], [real_size.read(c, 0.01) for c in qd])
    assert got.startswith("+5.27 [") and got.endswith("] win")
    one = real_size.sf_minus_qdrop([real_size.read(sf[0], 0.01)], [real_size.read(qd[0], 0.01)])
    assert one == "+5.00 (1 seed: undecided)"
    assert real_size.sf_minus_qdrop([None], [real_size.read(qd[0], 0.01)]) == "-"


def test_the_plan_keeps_only_the_settings_asked_for(capsys):
    cells = real_size.plan(["ufld-r18"], [0], bits=["w4a4"])
    assert {c.bits for c in cells} == {"w4a4"} and len(cells) == 3 + 2
    cells = real_size.plan(["ufld-r18"], [0], bits=["w4a4", "w8a4"], methods=["calib", "aciq"])
    assert [c.id for c in cells] == ["ufld-r18-w4a4-calib-s0", "ufld-r18-w4a4-aciq-s0",
                                     "ufld-r18-w8a4-calib-s0", "ufld-r18-w8a4-aciq-s0"]
    with pytest.raises(SystemExit):
        real_size.main(["--list", "--models", "ufld-r18", "--bits", "w9a9"])
    assert "--bits: expected some of w8a8, w8a4, w4a4" in capsys.readouterr().err
