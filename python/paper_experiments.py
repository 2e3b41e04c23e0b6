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
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

FAMILIES = ["ganet", "condlane", "laneatt", "bezier", "lstr", "scnn", "resa"]
SMALL = [f"{f}-s" for f in FAMILIES]
ZOO = SMALL + [f"{f}-m" for f in FAMILIES]
TUNING = ["adaround", "brecq", "qdrop", "sf"]
ALL_METHODS = ["aciq", "omse"] + TUNING
ABLATION = ["sf", "sf-nofocus", "sf-noselect", "network"]
# BezierLaneNet-S loses most in the calibration baselines' four models; LSTR-S, measured in Table 1, more still
ABLATION_MODELS = ("ganet-s", "bezier-s", "lstr-s")
ALL_TABLES = ["1", "seeds", "2", "3", "5", "7", "edges", "stress"]
# Stress settings, mildest first (fewest bits taken away from Table 1's W4A4): each Small model gets the first
# one where the default calibration alone loses at least STRESS_LOSS F1 against the float model.
STRESS_PROBES = [("w4a4", ("--first-last-at-bits",)), ("w4a3", ()), ("w3a3", ()), ("w2a4", ())]
STRESS_LOSS = 5.0
MORE_TIME = 1.2  # SF at its equal-time fraction slower than this multiple of QDrop's time: QDrop reruns at SF's time
STRESS_METHODS = ["calib", "qdrop", "sf"]
CELLS = "benchmarks/results/paper"
RUNS = "runs/paper"
TEST_SCENES = 2000


@dataclass
class Cell:
    table: str
    model: str
    bits: str
    method: str
    seed: int = 0
    data: str = "synth"
    extra: List[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        tail = "".join(e.strip("-").replace(" ", "") for e in self.extra)
        return "-".join(x for x in (self.table, self.model, self.bits, self.method, f"s{self.seed}",
                                    self.data.split(":")[0] if self.data != "synth" else "", tail) if x)


# The grid is trimmed to fit about 14 CPU-hours (estimate_minutes) on the 2-core machine at f = 0.01 (a block-wise
# cell of a Small model takes 3-4 minutes there, of a Mid model 10-17, a network-wise one 1-3); ``full=True`` plans
# the complete grid.
GRID_NOTES = {
    False: "The grid (paper_experiments.plan), trimmed to about 14 CPU-hours of the 2-core machine (estimated from "
           "its measured cells): Table 1 runs all six methods on the Small models and ACIQ, OMSE, QDrop and SF on "
           "the Mid ones (AdaRound and BRECQ, the slowest, are left out there); the extra seeds (1 and 2) go to "
           "BRECQ, QDrop and SF at W4A4 and W8A4 on the Small models, where the claims are decided, and to the "
           "ablation's variants and the top-k runs (about a minute each, with differences too small to judge from "
           "one seed); Table 5 runs the Small models. The ablation's full method and the QAT table's QDrop and SF "
           "are Table 1's cells. `--full` plans the complete grid.",
    True: "The complete grid (paper_experiments.plan with --full). The ablation's full method and the QAT "
          "table's QDrop and SF are Table 1's cells.",
}
MID_METHODS = ["aciq", "omse", "qdrop", "sf"]
SEED_METHODS = ["brecq", "qdrop", "sf"]
# Mid entries that also get the seeds of QDrop and SF: where Selective Focus was diagnosed (docs/recon.md)
SEEDED_MID = [("bezier-m", "w4a4")]


def stress_probe(model: str, bits: str, extra=()) -> Cell:
    return Cell("stress", model, bits, "calib", extra=list(extra))


def stress_setting(model: str, f: float) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """The model's stress setting (bits, extra tune arguments) by the rule of STRESS_PROBES, from its finished
    probe cells; None while the probes that decide it have not all finished, or when none loses enough."""
    for bits, extra in STRESS_PROBES:
        result = read_cell(stress_probe(model, bits, extra), f)
        if result is None:
            return None
        if result["fp_f1"] - result["f1"] >= STRESS_LOSS:
            return bits, tuple(extra)
    return None


def had_the_machine(result: dict) -> bool:
    """Whether a cell's run had the machine: load average below the core count at start and end."""
    return max(result.get("load_start", 0), result.get("load_end", 0)) < result.get("cores", 2) + 0.5


def equal_fraction(qdrop: Optional[dict], sf: Optional[dict], f: float) -> Optional[float]:
    """The fraction at which SF's tuning takes as long as QDrop's at ``f``: f x (QDrop seconds / SF seconds)
    from two finished seed-0 cells of one machine that both had it, to two significant digits (at most 1)."""
    if not qdrop or not sf or not qdrop.get("tuning_seconds") or not sf.get("tuning_seconds"):
        return None
    if qdrop.get("machine") != sf.get("machine") or not (had_the_machine(qdrop) and had_the_machine(sf)):
        return None
    return float(f"{min(1.0, f * qdrop['tuning_seconds'] / sf['tuning_seconds']):.2g}")


def median_seconds(cells: List[Optional[dict]], idle_only: bool = False) -> Optional[float]:
    """The median tuning time of ``cells`` (with ``idle_only``, of those that had the machine); None when none."""
    vals = [c["tuning_seconds"] for c in cells
            if c and c.get("tuning_seconds") and (not idle_only or had_the_machine(c))]
    return statistics.median(vals) if vals else None


def matched_qdrop_fraction(qdrop: List[Optional[dict]], sf_equal: List[Optional[dict]], f: float) -> Optional[float]:
    """Where SF's equal-time runs took more than MORE_TIME x QDrop's median time at ``f`` (SF's fraction comes
    from one seed-0 ratio, and time does not scale exactly with iterations): the fraction at which QDrop's
    tuning takes as long as SF's there, to two significant digits (at most 1); None where the times match."""
    t_qd, t_sf = median_seconds(qdrop, idle_only=True), median_seconds(sf_equal, idle_only=True)
    if t_qd is None or t_sf is None or t_sf <= MORE_TIME * t_qd:
        return None
    return float(f"{min(1.0, f * t_sf / t_qd):.2g}")


def equal_time_entries(models: List[str], f: float) -> List[Tuple[str, str, str, tuple, float]]:
    """(table, model, bits, extra, SF's equal-time fraction): each Small model at W4A4 (Table 1) and at its
    stress setting, once both seed-0 cells exist at ``f`` and their times give a fraction other than ``f``."""
    out = []
    for m in [x for x in models if x in SMALL]:
        entries = [("t1", "w4a4", ())]
        chosen = stress_setting(m, f)
        if chosen is not None:
            entries.append(("stress", *chosen))
        for table, bits, extra in entries:
            seed0 = {method: read_cell(Cell(table, m, bits, method, 0, extra=list(extra)), f) for method in ("qdrop", "sf")}
            g = equal_fraction(seed0["qdrop"], seed0["sf"], f)
            if g is not None and g != f:
                out.append((table, m, bits, tuple(extra), g))
    return out


def equal_time_plan(models: List[str], seeds: int, f: float) -> List[Tuple[Cell, float]]:
    """SF cells (with their fraction) whose tuning time matches QDrop's at ``f`` on the same entry; then, where
    those SF runs (all seeds finished) took more than MORE_TIME x QDrop's time, QDrop cells at SF's time."""
    out: List[Tuple[Cell, float]] = []
    for table, m, bits, extra, g in equal_time_entries(models, f):
        sf = [Cell(table, m, bits, "sf", s, extra=list(extra)) for s in range(seeds)]
        out += [(c, g) for c in sf]
        qd = [read_cell(Cell(table, m, bits, "qdrop", s, extra=list(extra)), f) for s in range(seeds)]
        done = [read_cell(c, g) for c in sf]
        q = matched_qdrop_fraction(qd, done, f) if all(done) else None
        if q is not None and q != f:
            out += [(Cell(table, m, bits, "qdrop", s, extra=list(extra)), q) for s in range(seeds)]
    return out


def plan(tables: List[str], models: List[str], seeds: int, full: bool = False, f: float = 0.01) -> List[Cell]:
    """The cells of the given tables. A cell whose settings equal a Table 1 cell (the full method of the
    ablation, QDrop and SF of the QAT comparison) is that Table 1 cell: it runs once. The stress table's
    method cells depend on its probe cells' results at budget ``f``: they appear once the probes finished."""
    cells: List[Cell] = []
    if "1" in tables:  # the main table; at W8A8 the paper runs ACIQ, QDrop and SF only
        for m in models:
            low_bit = ALL_METHODS if (full or m in SMALL) else MID_METHODS
            for bits in ("w8a8", "w8a4", "w4a4"):
                for method in (["aciq", "qdrop", "sf"] if bits == "w8a8" else low_bit):
                    cells.append(Cell("t1", m, bits, method))
    if "seeds" in tables:  # more seeds for the tuning methods' low-bit cells of the Small models
        for m in [x for x in models if x in SMALL]:
            for bits in ("w8a4", "w4a4"):
                for method in (TUNING if full else SEED_METHODS):
                    cells += [Cell("t1", m, bits, method, seed=s) for s in range(1, seeds)]
        for m, bits in [e for e in SEEDED_MID if e[0] in models]:
            cells += [Cell("t1", m, bits, method, seed=s) for method in ("qdrop", "sf") for s in range(1, seeds)]
    # The ablation and the top-k study compare network-wise runs (about a minute each) whose differences are
    # small: they get the seeds too, or their verdicts could never be decided.
    if "2" in tables:  # the ablation, on GANet-S W4A4 as the paper and on the models where calibration loses most
        for m in ABLATION_MODELS:
            cells += [Cell("t1" if method == "sf" else "t2", m, "w4a4", method, seed=s)
                      for s in range(seeds) for method in ABLATION]
    if "3" in tables:  # QAT against the post-training methods
        for m in ("condlane-s", "resa-s"):
            cells += [Cell("t3" if method == "lsq-qat" else "t1", m, "w8a4", method)
                      for method in ("lsq-qat", "qdrop", "sf")]
    if "5" in tables:  # TuSimple frame
        for m in [f"{f}-{s}" for s in ("sm" if full else "s") for f in ("bezier", "ganet", "lstr", "scnn")]:
            for bits in ("w8a4", "w4a4"):
                cells += [Cell("t5", m, bits, method, data="tusimple") for method in ("qdrop", "sf")]
    if "7" in tables:  # top-k on GANet-S, TuSimple frame (k = 2 is Table 5's SF cell)
        for s in range(seeds):
            cells += [Cell("t7", "ganet-s", "w4a4", "sf", s, "tusimple", ["--top-k", str(k)]) for k in (1, 3)]
            cells.append(Cell("t5", "ganet-s", "w4a4", "sf", s, "tusimple"))
    if "edges" in tables:  # the first and last layers at W/A bits too
        cells += [Cell("edges", m, "w4a4", method, extra=["--first-last-at-bits"]) for m in SMALL for method in ("omse", "sf")]
    if "stress" in tables:  # settings where calibration alone loses >= STRESS_LOSS F1, then the methods there
        for m in [x for x in models if x in SMALL]:
            cells += [stress_probe(m, bits, extra) for bits, extra in STRESS_PROBES]
            chosen = stress_setting(m, f)
            if chosen is not None:
                bits, extra = chosen
                cells += [Cell("stress", m, bits, method, seed=s, extra=list(extra))
                          for method in STRESS_METHODS for s in range(seeds)]
    unique: Dict[str, Cell] = {}
    for c in cells:
        unique.setdefault(c.id, c)
    return list(unique.values())


def tusimple_root() -> str:
    """Generated TuSimple-frame trees (a train split for calibration, a test split): made once."""
    root = os.path.join(RUNS, "tusimple-synth")
    if not os.path.isfile(os.path.join(root, "test_label.json")):
        from selfocus_ext.data.layouts import write_tusimple

        write_tusimple(root, 512, seed=1, split="train")
        write_tusimple(root, 1000, seed=1, split="test")
    return root


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def machine_name(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} cores, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


# --smoke: each cell at the ci budget on a few images (for trying an executor; not results)
SMOKE_ARGS = ["--calib", "8", "--test", "16"]


def run_cell(cell: Cell, f: float, device: str = "cpu", smoke: bool = False) -> dict:
    from selfocus_ext import tune
    from selfocus_ext.recon.config import ENGINE_VERSION

    out = os.path.join(RUNS, f"f{f:g}", cell.id)
    data = f"tusimple:{tusimple_root()}" if cell.data == "tusimple" else cell.data
    argv = ["--model", cell.model, "--bits", cell.bits, "--method", cell.method,
            "--budget", "ci" if smoke else f"f{f:g}",
            "--seed", str(cell.seed), "--data", data, "--out", out, "--quiet", "--resume", "--device", device,
            "--keep-tuned"] + cell.extra  # the tables report the raw tuned model (the held-out check is reported beside)
    if smoke:
        argv += SMOKE_ARGS
    elif cell.data == "synth":
        argv += ["--test", str(TEST_SCENES)]
    load0, t0 = load_average(), time.time()
    code = tune.main(argv)
    if code != 0:
        raise SystemExit(f"cell {cell.id}: the tune command stopped with exit code {code} ({out})")
    with open(os.path.join(out, "report.json")) as fh:
        report = json.load(fh)
    with open(os.path.join(out, "progress.json")) as fh:
        progress = json.load(fh)
    key = "tuned" if "tuned" in progress else "calibrated"
    return dict(cell=asdict(cell), id=cell.id, f=f, run=out, f1=progress[key]["f1"], fp_f1=progress["fp"]["f1"],
                fp_accuracy=progress["fp"].get("accuracy"),
                lds=progress[key].get("lds"), counts=progress[key].get("counts"),
                accuracy=progress[key].get("accuracy"), seconds=progress.get("seconds", {}),
                tuning_seconds=progress.get("seconds", {}).get("tuning"), iterations=report.get("iterations"),
                selection=progress.get("selection", []), start_f1=progress["calibrated"]["f1"],
                heldout=progress.get("kept"), engine=ENGINE_VERSION, load_start=load0, load_end=load_average(),
                wall_seconds=time.time() - t0, cores=os.cpu_count(), device=device, machine=machine_name(device),
                date=time.strftime("%Y-%m-%d"), **({"smoke": True} if smoke else {}))


def cell_path(cell: Cell, f: float) -> str:
    return os.path.join(CELLS, f"f{f:g}", f"{cell.id}.json")


def is_stale(result: dict) -> bool:
    """A cell result of a network-wise method from an engine whose network-wise tuning differed from today's
    (recon.config.ENGINE_VERSION; results written before it was recorded are engine 1)."""
    from selfocus_ext.recon import config

    method = result.get("cell", {}).get("method")
    return (method in config.METHODS and config.METHODS[method].granularity == "network"
            and int(result.get("engine", 1)) < config.ENGINE_VERSION)


def read_cell(cell: Cell, f: float) -> Optional[dict]:
    path = cell_path(cell, f)
    if not os.path.isfile(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def stale(cell: Cell, f: float) -> bool:
    """A finished cell whose result ``is_stale``."""
    result = read_cell(cell, f)
    return result is not None and is_stale(result)


def archive_stale(cell: Cell, f: float) -> None:
    """Moves a stale cell's result under f<F>-engine<N>/ (the report compares against it) and removes its run
    directory, so the cell runs again from the start."""
    import shutil

    path = cell_path(cell, f)
    old = os.path.join(CELLS, f"f{f:g}-engine{int(read_cell(cell, f).get('engine', 1))}")
    os.makedirs(old, exist_ok=True)
    os.replace(path, os.path.join(old, os.path.basename(path)))
    shutil.rmtree(os.path.join(RUNS, f"f{f:g}", cell.id), ignore_errors=True)


def estimate_minutes(cell: Cell, f: float) -> float:
    """A rough estimate for planning, from the first measured cells of GANet-S on the idle 2-core machine
    (f = 0.01: QDrop 164 s of tuning, SF 23 s; evaluation and calibration about 35 s); a Mid model 3.5 times
    that (its W4A4 cells measured there: QDrop 550-920 s of tuning, SF 61-91 s, evaluations about 2 minutes)."""
    base = 0.6
    scale = 3.5 if cell.model.endswith("-m") else 1.0
    full = {"aciq": 0.0, "omse": 0.0, "calib": 0.0, "sf": 38.0, "sf-nofocus": 38.0, "sf-noselect": 38.0, "network": 38.0,
            "lsq-qat": 25.0, "qdrop": 273.0, "brecq": 273.0, "adaround": 300.0}  # minutes at f = 1
    return scale * (base + f * full[cell.method])


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
        global CELLS, RUNS
        CELLS, RUNS = CELLS + "-smoke", RUNS + "-smoke"
    from selfocus_ext.models import registry

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
        from results_report import write_results  # python/results_report.py

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
    from tqdm import tqdm

    if a.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            p.error("--executor ray: Ray is not installed (pip install -e .[cluster])")
        from grid_ray import run_on_ray  # python/grid_ray.py
        for cell, g in todo:
            if stale(cell, g):
                archive_stale(cell, g)
        gpus = a.gpus_per_cell if a.gpus_per_cell is not None else (1.0 if a.device == "cuda" else 0.0)
        out = run_on_ray(lambda: pending()[1], address=a.address, device=a.device, cpus_per_cell=a.cpus_per_cell,
                         gpus_per_cell=gpus, retries=a.retries, smoke=a.smoke, max_cells=a.max_cells)
        for cell_id, error in out["failed"].items():
            print(f"failed: {cell_id}: {error}", file=sys.stderr)
        return 1 if out["failed"] else 0
    from selfocus_ext.files import atomic_write_json

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
