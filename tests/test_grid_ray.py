"""paper_experiments.py --executor ray: a tiny grid (4 cells at the ci budget) on a local Ray instance with two
workers gives the cell files and report the local executor gives; a worker killed in the middle of a cell is
replaced and the grid still finishes with every cell once."""
import json
import os
import signal
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e .[cluster]); the cluster executor is untested here")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import grid_plan  # noqa: E402
import paper_experiments as pe  # noqa: E402

GRID = ["--tables", "1", "--models", "ganet-s", "--bits", "w4a4", "--methods", "aciq", "omse", "qdrop", "sf",
        "--smoke", "--f", "0.01"]


@pytest.fixture
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # e.g. no room for its object store on this machine
        pytest.skip(f"a local Ray instance does not start here: {type(exc).__name__}: {exc}")
    yield
    ray.shutdown()


def cells_in(root):
    """The cell files a --smoke grid wrote (under <CELLS>-smoke)."""
    out = {}
    for name in sorted(os.listdir(os.path.join(root, "f0.01"))):
        with open(os.path.join(root, "f0.01", name)) as fh:
            out[name] = json.load(fh)
    return out


def use_dirs(monkeypatch, tmp_path, name):
    monkeypatch.setattr(grid_plan, "CELLS", str(tmp_path / name / "cells"))
    monkeypatch.setattr(grid_plan, "RUNS", str(tmp_path / name / "runs"))


def test_ray_grid_writes_the_cells_and_report_of_the_local_executor(tmp_path, monkeypatch, local_ray):
    import torch

    use_dirs(monkeypatch, tmp_path, "local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task runs (one CPU per cell): the same arithmetic
    try:
        assert pe.main(["--run"] + GRID) == 0
    finally:
        torch.set_num_threads(threads)
    use_dirs(monkeypatch, tmp_path, "ray")
    assert pe.main(["--run", "--executor", "ray"] + GRID) == 0
    local, remote = cells_in(tmp_path / "local" / "cells-smoke"), cells_in(tmp_path / "ray" / "cells-smoke")
    assert sorted(local) == sorted(remote) and len(local) == 4
    for name in local:
        assert remote[name]["executor"] == "ray"
        for key in ("id", "f1", "fp_f1", "start_f1", "counts", "iterations"):
            assert remote[name][key] == local[name][key], (name, key)
    # the report reads them alike, once the measured times (which differ between any two runs) are set equal
    for name in remote:
        remote[name].update({k: local[name].get(k) for k in ("tuning_seconds", "method_seconds", "wall_seconds", "seconds", "load_start",
                                                             "load_end", "run")})
        with open(tmp_path / "ray" / "cells-smoke" / "f0.01" / name, "w") as fh:
            json.dump(remote[name], fh)
    import results_report as rr

    texts = []
    for name in ("local", "ray"):
        monkeypatch.setattr(rr, "CELLS", str(tmp_path / name / "cells-smoke"))
        monkeypatch.setattr(rr, "OUT", str(tmp_path / name / "results.md"))
        monkeypatch.setattr(rr, "FIGURES", str(tmp_path / name / "figures"))
        monkeypatch.chdir(tmp_path / name)
        os.makedirs("benchmarks/results", exist_ok=True)
        rr.write_results(0.01)
        texts.append((tmp_path / name / "results.md").read_text())
    assert texts[0] == texts[1]


def test_a_worker_killed_mid_cell_is_retried_and_every_cell_finishes_once(tmp_path, monkeypatch, local_ray):
    use_dirs(monkeypatch, tmp_path, "ray")
    from grid_ray import run_on_ray

    killed = []

    def killer():  # kill the worker of the first QDrop cell once it has started
        pid_file = os.path.join(grid_plan.RUNS, "f0.01", "t1-ganet-s-w4a4-qdrop-s0", "worker.pid")
        deadline = time.time() + 300
        while time.time() < deadline and not os.path.isfile(pid_file):
            time.sleep(0.2)
        time.sleep(1.0)
        with open(pid_file) as fh:
            pid = int(fh.read())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    cells = [c for c in pe.plan(["1"], ["ganet-s"], 3) if c.bits == "w4a4" and c.method in ("aciq", "omse", "qdrop", "sf")]
    pending = lambda: [(c, 0.01) for c in cells if not os.path.isfile(pe.cell_path(c, 0.01))]
    out = run_on_ray(pending, retries=2, smoke=True)
    thread.join(timeout=5)
    assert killed, "the test did not get to kill a worker"
    assert out["failed"] == {}
    assert sorted(out["finished"]) == sorted(c.id for c in cells)  # each once
    with open(os.path.join(grid_plan.RUNS, "f0.01", "t1-ganet-s-w4a4-qdrop-s0", "worker.pid")) as fh:
        assert int(fh.read()) != killed[0]  # a new worker ran the retry
    assert len(os.listdir(os.path.join(grid_plan.CELLS, "f0.01"))) == 4
