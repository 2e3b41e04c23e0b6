"""python/lr_search.py: the two-stage plan, and a choice that moves off the defaults only on a paired win."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import lr_search  # noqa: E402


def put(c, f1):
    path = lr_search.cell_path(c)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rows = [[1, 0, 0]] * 50  # identical per-image rows: no test-set noise between the pairs
    with open(path, "w") as fh:
        json.dump({"id": c.id, "f1": f1, "cell": {"seed": c.seed, "data": "synth"}, "image_counts": rows}, fh)


def test_stage_two_follows_stage_one_and_the_defaults_stay_without_a_win(tmp_path, monkeypatch):
    monkeypatch.setattr(lr_search, "CELLS", str(tmp_path))
    first = lr_search.plan()
    assert len(first) == len(lr_search.METHODS) * 3 * len(lr_search.SETTINGS) * len(lr_search.SEEDS)
    v0, s0 = lr_search.defaults("qdrop")
    assert {c.extra[1] for c in first if c.method == "qdrop"} == {f"{v0 * k:.3g}" for k in lr_search.FACTORS}
    # stage 1 of QDrop: the largest rounding rate best by a hair in one setting only
    for c in first:
        if c.method == "qdrop":
            bump = 0.3 if float(c.extra[1]) > v0 and c.seed == 10 and c.model == "ganet-s" else 0.0
            put(c, 80.0 + bump)
    second = [c for c in lr_search.plan() if c.method == "qdrop" and c not in first]
    assert len(second) == 2 * len(lr_search.SETTINGS) * len(lr_search.SEEDS)
    assert {c.extra[1] for c in second} == {f"{v0 * 3:.3g}"}
    assert {c.extra[3] for c in second} == {f"{s0 / 3:.3g}", f"{s0 * 3:.3g}"}
    for c in second:
        put(c, 79.0)
    got = lr_search.choice("qdrop")
    assert got["finished"] and got["chosen"] == (v0, s0) and "defaults stay" in got["why"]
    # a consistent gain in every (model, seed): adopted
    for c in second:
        if float(c.extra[3]) > s0:
            put(c, 82.0 + 0.1 * c.seed)
    got = lr_search.choice("qdrop")
    assert got["chosen"] == (v0 * 3, s0 * 3) and "wins" in got["why"]
    assert "| 0.003 | 0.00012 | 83.05 |" in lr_search.report()
