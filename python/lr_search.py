"""Learning rates chosen alike for every tuning method: one small search of each method's two Adam rates (the
rounding variables' ``--v-lr`` and the activation steps' ``--step-lr``) on settings the tables do not report.

    python python/lr_search.py --plan            # the cells still to run (stage 2 appears once stage 1 is done)
    python python/lr_search.py --run [--max-cells N]
    python python/lr_search.py --report          # benchmarks/results/lr-search.md: each method's choice

Settings: W4A4 on the Small models of SETTINGS with seeds 10 and 11 (the tables report seeds 0-2), at f = 0.01
of each method's paper iterations, 2000 test scenes, the raw tuned model. Stage 1: the rounding rate at 1/3,
1 and 3 times the method's default, the step rate at its default. Stage 2: the step rate at 1/3 and 3 times
its default with stage 1's best rounding rate. The choice per method: the pair with the highest mean F1 over
the settings, adopted only where it wins against the defaults by the paired rule of docs/results.md (each
(model, seed) a paired difference); otherwise the defaults stay. The same search, budget and settings for
every method, so no method's rates were tuned on the reported cells.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Dict, List, Optional, Tuple

import grid_cell
import grid_plan
from grid_plan import Cell
from report_tables import paired
from selfocus_ext.files import atomic_write_json
from selfocus_ext.recon import config as recon_config

METHODS = ["sf", "qdrop", "brecq", "pdquant"]
SETTINGS = [("ganet-s", "w4a4"), ("condlane-s", "w4a4")]
SEEDS = [10, 11]
FACTORS = (1 / 3, 1.0, 3.0)
CELLS = "benchmarks/results/lr-search"
F = 0.01
OUT = "benchmarks/results/lr-search.md"


def defaults(method: str) -> Tuple[float, float]:
    m = recon_config.METHODS[method]
    return m.v_lr, m.step_lr


def cell(method: str, model: str, bits: str, seed: int, v_lr: float, step_lr: float) -> Cell:
    return Cell("lr", model, bits, method, seed, extra=["--v-lr", f"{v_lr:.3g}", "--step-lr", f"{step_lr:.3g}"])


def cell_path(c: Cell) -> str:
    return os.path.join(CELLS, f"f{F:g}", f"{c.id}.json")


def read(c: Cell) -> Optional[dict]:
    return grid_plan.read_result(cell_path(c))


def rate_cells(method: str, v_lr: float, step_lr: float) -> List[Cell]:
    return [cell(method, m, b, s, v_lr, step_lr) for m, b in SETTINGS for s in SEEDS]


def mean_f1(cells: List[Cell]) -> Optional[float]:
    got = [read(c) for c in cells]
    return statistics.fmean(r["f1"] for r in got) if all(got) else None


def stage1(method: str) -> List[Tuple[float, float]]:
    v, s = defaults(method)
    return [(v * k, s) for k in FACTORS]


def stage2(method: str) -> List[Tuple[float, float]]:
    """The step rates tried with stage 1's best rounding rate; empty until stage 1 has finished."""
    scores = [(mean_f1(rate_cells(method, v, s)), v) for v, s in stage1(method)]
    if any(f is None for f, _ in scores):
        return []
    best_v = max(scores)[1]
    s = defaults(method)[1]
    return [(best_v, s * k) for k in FACTORS if k != 1.0]


def plan() -> List[Cell]:
    out = []
    for m in METHODS:
        for v, s in stage1(m) + stage2(m):
            out += rate_cells(m, v, s)
    return out


def as_pairs(cells: List[Cell]) -> List[dict]:
    """Cell results relabelled so that each (model, seed) is one 'seed' of the paired rule."""
    out = []
    for i, c in enumerate(cells):
        r = read(c)
        if r is not None:
            out.append({**r, "cell": {**r["cell"], "seed": i}})
    return out


def choice(method: str) -> Dict[str, object]:
    tried = stage1(method) + stage2(method)
    scored = [(mean_f1(rate_cells(method, v, s)), v, s) for v, s in tried]
    done = [t for t in scored if t[0] is not None]
    v0, s0 = defaults(method)
    result: Dict[str, object] = {"method": method, "default": (v0, s0), "tried": scored,
                                 "finished": len(done) == 5}
    if not done:
        return {**result, "chosen": (v0, s0), "why": "not run"}
    best = max(done)
    if (best[1], best[2]) == (v0, s0):
        return {**result, "chosen": (v0, s0), "why": "the defaults score highest"}
    verdict = paired(as_pairs(rate_cells(method, best[1], best[2])), as_pairs(rate_cells(method, v0, s0)))
    if verdict["verdict"] == "win":
        return {**result, "chosen": (best[1], best[2]), "why": f"wins against the defaults ({verdict['verdict']})",
                "paired": verdict}
    return {**result, "chosen": (v0, s0), "why": f"the best pair does not win against the defaults "
                                                 f"({verdict['verdict']}): the defaults stay", "paired": verdict}


def report() -> str:
    lines = ["# Learning-rate search of the tuning methods", "",
             f"`python python/lr_search.py --run` then `--report`. Settings: {', '.join(f'{m} {b.upper()}' for m, b in SETTINGS)}, "
             f"seeds {', '.join(map(str, SEEDS))} (not reported in the tables), f = {F:g}. Mean F1 over the "
             f"{len(SETTINGS) * len(SEEDS)} runs of each rate pair (v_lr = rounding variables, step_lr = activation steps).", ""]
    for m in METHODS:
        c = choice(m)
        lines += [f"## {m}", "", "| v_lr | step_lr | mean F1 |", "|---|---|---|"]
        for f1, v, s in c["tried"]:
            mark = " (default)" if (v, s) == c["default"] else ""
            lines.append(f"| {v:.3g} | {s:.3g}{mark} | {'-' if f1 is None else f'{f1:.2f}'} |")
        lines += ["", f"Chosen: v_lr {c['chosen'][0]:.3g}, step_lr {c['chosen'][1]:.3g}: {c['why']}"
                  + ("" if c["finished"] else " (the search is not finished)") + ".", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", action="store_true")
    p.add_argument("--run", action="store_true")
    p.add_argument("--report", action="store_true")
    p.add_argument("--max-cells", type=int, default=None)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    a = p.parse_args(argv)
    if a.report:
        text = report()
        with open(OUT, "w") as fh:
            fh.write(text)
        print(text)
        return 0
    todo = [c for c in plan() if read(c) is None]
    if a.plan or not a.run:
        for c in todo:
            print(f"  {c.id}  ~{grid_plan.estimate_minutes(c, F):.0f} min")
        print(f"{len(todo)} cells to run (more appear once a method's stage 1 has finished)")
        return 0
    from tqdm import tqdm

    ran = 0
    bar = tqdm(desc="lr-search cells", unit="cell")
    while todo and (a.max_cells is None or ran < a.max_cells):
        c = todo[0]
        result = grid_cell.run_cell(c, F, a.device)
        atomic_write_json(result, cell_path(c))
        tqdm.write(f"{c.id}: F1 {result['f1']:.2f}")
        ran += 1
        bar.update(1)
        todo = [c for c in plan() if read(c) is None]
    return 0


if __name__ == "__main__":
    sys.exit(main())
