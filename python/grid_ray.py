"""The experiment grid's cells as Ray tasks (``paper_experiments.py --run --executor ray``).

Each cell is one task with its resources (CPU threads, or GPUs for ``--device cuda``); the task runs the cell
and writes its result file atomically itself, into the same place the local executor writes, so reports,
resumes and mixed grids (some cells local, some on a cluster) need nothing else. The cell's tune run resumes
from its own checkpoint, so a retry after a lost worker continues where it stopped. A cell that keeps
failing is reported by name after its retries; Ctrl-C cancels the outstanding tasks and leaves the finished
cells in place. Ray is an optional dependency: ``pip install -e .[cluster]``.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from typing import Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _run_cell_task(cell: dict, f: float, device: str, smoke: bool, root: str, cells_dir: str, runs_dir: str,
                   threads: int) -> Tuple[str, float]:
    """Body of one task: run a cell in the repository at ``root`` and write its result file."""
    os.chdir(root)
    if os.path.join(root, "python") not in sys.path:
        sys.path.insert(0, os.path.join(root, "python"))
    import torch  # imported here: the function runs on a worker that starts without python/ on its path

    import grid_cell
    import grid_plan
    from selfocus_ext.files import atomic_write_json

    torch.set_num_threads(threads)
    grid_plan.CELLS, grid_plan.RUNS = cells_dir, runs_dir
    c = grid_plan.Cell(**cell)
    os.makedirs(os.path.join(grid_plan.RUNS, f"f{f:g}", c.id), exist_ok=True)
    with open(os.path.join(grid_plan.RUNS, f"f{f:g}", c.id, "worker.pid"), "w") as fh:  # who runs it (tests kill it)
        fh.write(str(os.getpid()))
    t0 = time.time()
    result = grid_cell.run_cell(c, f, device, smoke=smoke)
    result["executor"] = "ray"
    atomic_write_json(result, grid_plan.cell_path(c, f))
    return c.id, time.time() - t0


def run_on_ray(pending: Callable[[], List[Tuple[object, float]]], *, address: str = None, device: str = "cpu",
               cpus_per_cell: int = 1, gpus_per_cell: float = 0.0, retries: int = 2, smoke: bool = False,
               max_cells: int = None, cells_dir: str = None, runs_dir: str = None, init_kwargs: Dict = None) -> dict:
    """Runs the cells ``pending()`` returns ((cell, fraction) pairs still to run) as Ray tasks until none is
    left, asking again after every finished cell (a finished probe can add cells). Returns
    {"finished": [ids], "failed": {id: error}}."""
    import ray  # optional: only the Ray executor needs it
    from tqdm import tqdm

    import grid_plan

    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, **(init_kwargs or {}))
    # workers do not have python/ on their path: the task function travels by value (it puts python/ on the
    # path itself before importing the grid's code)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    task = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=retries,
                      retry_exceptions=True)(_run_cell_task)
    cells_dir = os.path.abspath(cells_dir or grid_plan.CELLS)
    runs_dir = os.path.abspath(runs_dir or grid_plan.RUNS)
    running: Dict[object, Tuple[object, float]] = {}
    submitted, finished, failed, durations = set(), [], {}, []
    slots = max(1, int(ray.cluster_resources().get("GPU" if gpus_per_cell else "CPU", 1)
                       // (gpus_per_cell or cpus_per_cell)))
    bar = tqdm(desc="paper cells (ray)", unit="cell")

    def submit():
        for cell, g in pending():
            if (cell.id, g) in submitted or (max_cells is not None and len(submitted) >= max_cells):
                continue
            submitted.add((cell.id, g))
            ref = task.remote(asdict(cell), g, device, smoke, ROOT, cells_dir, runs_dir, max(1, cpus_per_cell))
            running[ref] = (cell, g)

    def show():
        left = len(running)
        eta = (sum(durations) / len(durations)) * left / min(slots, max(left, 1)) if durations else float("nan")
        bar.total = len(finished) + len(failed) + left
        bar.set_postfix(finished=len(finished), running=min(left, slots), queued=max(0, left - slots),
                        failed=len(failed), left=f"~{eta / 60:.0f} min" if durations else "?")
        bar.refresh()

    try:
        submit()
        show()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            cell, g = running.pop(done[0])
            try:
                cell_id, seconds = ray.get(done[0])
                finished.append(cell_id)
                durations.append(seconds)
                bar.update(1)
            except Exception as exc:  # after its retries: reported by name, the rest goes on
                failed[cell.id] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
                tqdm.write(f"cell {cell.id} failed after {retries} retries: {failed[cell.id]}")
            submit()
            show()
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        tqdm.write(f"interrupted: {len(running)} outstanding cells cancelled; {len(finished)} finished cells kept")
        raise
    finally:
        bar.close()
    return {"finished": finished, "failed": failed}
