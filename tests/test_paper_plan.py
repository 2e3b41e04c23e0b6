"""python/paper_experiments.py: the planned cells (no runs)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import paper_experiments as pe  # noqa: E402


def test_plan_covers_the_tables_once_each():
    cells = pe.plan(["1", "seeds", "2", "3", "5", "7", "edges"], pe.ZOO, seeds=3)
    ids = [c.id for c in cells]
    assert len(ids) == len(set(ids))
    t1 = [c for c in cells if c.table == "t1" and c.seed == 0]
    # W8A8: ACIQ, QDrop, SF; W8A4 and W4A4: all six methods
    assert len(t1) == len(pe.ZOO) * (3 + 6 + 6)
    seeds = [c for c in cells if c.table == "t1" and c.seed > 0]
    assert len(seeds) == len(pe.SMALL) * 2 * len(pe.TUNING) * 2 and all(c.model in pe.SMALL for c in seeds)
    assert {c.method for c in cells if c.table == "t2"} == set(pe.ABLATION)
    assert {(c.model, c.method) for c in cells if c.table == "t3"} >= {("condlane-s", "lsq-qat"), ("resa-s", "sf")}
    assert all(c.data == "tusimple" for c in cells if c.table in ("t5", "t7"))
    assert all("--first-last-at-bits" in c.extra for c in cells if c.table == "edges")


def test_plan_follows_the_models_given():
    cells = pe.plan(["1"], ["ganet-s"], seeds=3)
    assert {c.model for c in cells} == {"ganet-s"} and len(cells) == 15


def test_bad_fraction_is_refused(capsys):
    with pytest.raises(SystemExit):
        pe.main(["--plan", "--f", "2"])
    assert "--f" in capsys.readouterr().err
