"""The paper's experiments on the zoo: every cell one tune run, one result file; resumable.

    python python/paper_experiments.py --plan [--f 0.01] [--tables 1 seeds 2 3 5 7 edges stress]  # cells, cost
    python python/paper_experiments.py --run  [--f 0.01] [--tables ...] [--models ...] [--methods ...] [--bits ...]
                                              [--max-cells N] [--device cpu|cuda]
    python python/paper_experiments.py --report                                               # docs/results.md

A cell is one ``python -m selfocus_ext.tune`` run (its directory under runs/paper/, resumed when it was
stopped) and one JSON file under benchmarks/results/paper/ written when it finished: F1 (and per-scenario
TP/FP/FN), LDS, tuning time, iteration count, the machine and its load during the run. Finished cells are
skipped, so the grid can be spread over sessions. Every tuning method runs at the budget ``f<F>``: the same
fraction F of its own paper iterations (docs/recon.md). Timings count only from runs whose load average
stayed below the core count (the cell records it). The stress table first runs its probes (the default
calibration of each Small model at harsher settings); its method cells join the plan as soon as the probes
that choose the setting have finished (``--run`` plans again after every cell).

This file is the command; the plan is grid_plan.py, one cell's run grid_cell.py, the Ray executor
grid_ray.py, the report results_report.py (its tables report_tables.py).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import List, Optional

from tqdm import tqdm

import grid_plan
from grid_cell import run_cell
from grid_plan import (ABLATION, ABLATION_MODELS, ALL_METHODS, ALL_TABLES, FAMILIES, GRID_NOTES, MID_METHODS,  # noqa: F401
                       MORE_TIME, SEED_METHODS, SEEDED_MID, SMALL, STRESS_LOSS, STRESS_METHODS, STRESS_PROBES,
                       TUNING, ZOO, Cell, archive_stale, cell_path, equal_fraction, equal_time_plan, estimate_minutes,
                       is_stale, matched_qdrop_fraction, median_seconds, plan, read_cell, stale, stress_probe,
                       stress_setting)
from grid_ray import run_on_ray
from results_report import write_results
from selfocus_ext.files import atomic_write_json
from selfocus_ext.models import registry


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plan", action="store_true", help="list the cells still to run and their estimated cost")
    mode.add_argument("--run", action="store_true", help="run the cells still to run, in order")
    mode.add_argument("--report", action="store_true", help="write docs/results.md from the finished cells")
    p.add_argument("--f", type=float, default=0.01, help="budget fraction of every method's paper iterations")
    p.add_argument("--tables", nargs="+", default=ALL_TABLES)
    p.add_argument("--models", nargs="+", default=None, help="restrict to these zoo models")
    p.add_argument("--methods", nargs="+", default=None, help="restrict to these methods")
    p.add_argument("--bits", nargs="+", default=None,
                   choices=["w8a8", "w8a4", "w4a4"] + sorted({b for b, _ in STRESS_PROBES} - {"w4a4"}),
                   help="restrict to these bit settings")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the cells run (recorded in each)")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the 'seeds' cells (0 is Table 1's)")
    p.add_argument("--max-cells", type=int, default=None, help="stop after this many cells")
    p.add_argument("--full", action="store_true", help="the complete grid (about three times the trimmed one)")
    p.add_argument("--equal-time", action="store_true",
                   help="instead of the tables: SF on each Small model at W4A4 and its stress setting at the fraction "
                        "whose tuning time matches QDrop's at --f there (cells under f<that fraction>/); where SF "
                        f"still took more than {MORE_TIME:g}x QDrop's time, QDrop again at SF's time")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="where --run runs the cells: one after another here, or as Ray tasks (pip install -e .[cluster])")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start or join a local one)")
    p.add_argument("--cpus-per-cell", type=int, default=1, help="Ray: CPU threads per cell")
    p.add_argument("--gpus-per-cell", type=float, default=None, help="Ray: GPUs per cell (default 1 with --device cuda)")
    p.add_argument("--retries", type=int, default=2, help="Ray: retries of a failed cell before it is reported")
    p.add_argument("--smoke", action="store_true",
                   help="each cell at the ci budget on 8 calibration images and 16 test scenes (trying an executor)")
    p.add_argument("--rerun-stale", action="store_true",
                   help="also run again the network-wise cells finished by an older engine (their results move "
                        "under f<F>-engine<N>/, where the report compares against them)")
    a = p.parse_args(argv)
    if not 0 < a.f <= 1:
        p.error(f"--f: expected a fraction in (0, 1], got {a.f}")
    if a.smoke:  # never among the grid's results
        grid_plan.CELLS, grid_plan.RUNS = grid_plan.CELLS + "-smoke", grid_plan.RUNS + "-smoke"
    models = [m for m in (a.models or ZOO) if os.path.isfile(registry.weights_path(m))]
    unknown = [m for m in (a.models or []) if m not in registry.available()]
    if unknown:
        p.error(f"--models: unknown {unknown}; available: {', '.join(registry.available())}")
    methods = sorted({c.method for c in plan(ALL_TABLES, ZOO, a.seeds, full=True)})
    bad = [m for m in (a.methods or []) if m not in methods]
    if bad:
        p.error(f"--methods: unknown {bad}; expected some of {', '.join(methods)}")
    def pending():
        """(planned, still to run) as (cell, fraction) pairs."""
        if a.equal_time:
            cells = equal_time_plan(models, a.seeds, a.f)
        else:
            cells = [(c, a.f) for c in plan(a.tables, models, a.seeds, a.full, a.f)]
        cells = [(c, g) for c, g in cells
                 if (a.methods is None or c.method in a.methods) and (a.bits is None or c.bits in a.bits)]
        todo = [(c, g) for c, g in cells if not os.path.isfile(cell_path(c, g)) or (a.rerun_stale and stale(c, g))]
        # The Small models' cells first (they decide the claims); the Mid rows, the most expensive on a CPU, last.
        todo.sort(key=lambda cg: cg[0].model.endswith("-m"))
        return cells, todo

    cells, todo = pending()
    if a.report:
        absent = tuple(m for m in (a.models or ZOO) if m not in models)
        write_results(a.f, planned=plan(a.tables, models, a.seeds, a.full, a.f), grid=GRID_NOTES[a.full],
                      absent=absent)
        return 0
    est = sum(estimate_minutes(c, g) for c, g in todo)
    where = "at equal time with QDrop at" if a.equal_time else "at"
    print(f"{len(cells)} cells {where} f = {a.f:g}; {len(cells) - len(todo)} finished, {len(todo)} to run "
          f"(roughly {est / 60:.1f} CPU-hours on the 2-core machine)")
    if a.plan:
        for c, g in todo:
            print(f"  {c.id:<60} ~{estimate_minutes(c, g):5.1f} min" + (f"  (f = {g:g})" if g != a.f else ""))
        return 0
    if a.executor == "ray":
        if importlib.util.find_spec("ray") is None:
            p.error("--executor ray: Ray is not installed (pip install -e .[cluster])")
        for cell, g in todo:
            if stale(cell, g):
                archive_stale(cell, g)
        gpus = a.gpus_per_cell if a.gpus_per_cell is not None else (1.0 if a.device == "cuda" else 0.0)
        out = run_on_ray(lambda: pending()[1], address=a.address, device=a.device, cpus_per_cell=a.cpus_per_cell,
                         gpus_per_cell=gpus, retries=a.retries, smoke=a.smoke, max_cells=a.max_cells)
        for cell_id, error in out["failed"].items():
            print(f"failed: {cell_id}: {error}", file=sys.stderr)
        return 1 if out["failed"] else 0
    bar = tqdm(total=len(todo), desc="paper cells", unit="cell")
    ran = 0
    while todo and (a.max_cells is None or ran < a.max_cells):
        cell, g = todo[0]
        if stale(cell, g):
            archive_stale(cell, g)
        result = run_cell(cell, g, a.device, smoke=a.smoke)
        atomic_write_json(result, cell_path(cell, g))
        tqdm.write(f"{cell.id}: F1 {result['f1']:.2f} (FP {result['fp_f1']:.2f}), tuning "
                   f"{result['tuning_seconds'] or 0:.0f} s, load {result['load_start']:.1f}-{result['load_end']:.1f}")
        ran += 1
        _, todo = pending()  # a finished probe can add the stress table's method cells
        bar.total = ran + len(todo)
        bar.update(1)
    bar.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
