"""The paper grid's plan: the tables' cells, the stress and equal-time arithmetic, and the cell result files
(where they live, which are stale). ``CELLS`` and ``RUNS`` are where results and runs go (``--smoke`` moves
them aside). Nothing here runs a cell: grid_cell.py does."""
from __future__ import annotations

import json
import os
import shutil
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from selfocus_ext.recon import config as recon_config

FAMILIES = ["ganet", "condlane", "laneatt", "bezier", "lstr", "scnn", "resa"]
SMALL = [f"{f}-s" for f in FAMILIES]
ZOO = SMALL + [f"{f}-m" for f in FAMILIES]
TUNING = ["adaround", "brecq", "qdrop", "pdquant", "sf"]
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
STRESS_METHODS = ["calib", "qdrop", "pdquant", "sf"]
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
SEED_METHODS = ["brecq", "qdrop", "pdquant", "sf"]
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


def method_time(c: Optional[dict]) -> Optional[float]:
    """Seconds a method needed beyond the calibration all share: its tuning (a block-wise method's captures,
    Selective Focus's FP pass) and Selective Focus's noise-score curves. Cells store it; older cells give
    tuning plus the curves stage they recorded (their network-wise tuning time lacks the FP pass)."""
    if not c:
        return None
    if c.get("method_seconds"):
        return float(c["method_seconds"])
    if not c.get("tuning_seconds"):
        return None
    return float(c["tuning_seconds"] + (c.get("seconds") or {}).get("noise-score curves", 0.0))


def equal_fraction(qdrop: Optional[dict], sf: Optional[dict], f: float) -> Optional[float]:
    """The fraction at which SF's time takes as long as QDrop's at ``f``: f x (QDrop seconds / SF seconds)
    (``method_time``) from two finished seed-0 cells of one machine that both had it, to two significant
    digits (at most 1)."""
    t_qd, t_sf = method_time(qdrop), method_time(sf)
    if not t_qd or not t_sf:
        return None
    if qdrop.get("machine") != sf.get("machine") or not (had_the_machine(qdrop) and had_the_machine(sf)):
        return None
    return float(f"{min(1.0, f * t_qd / t_sf):.2g}")


ALTERNATED = "benchmarks/results/alternated-times.json"


def load_alternated() -> List[dict]:
    """The records of benchmarks/alternated_time.py (none when it has not run)."""
    if not os.path.isfile(ALTERNATED):
        return []
    with open(ALTERNATED) as fh:
        return json.load(fh)


def alternated_ratios(records: List[dict], method: str = "qdrop", budget: str = "") -> List[dict]:
    """Per entry, day and machine of ``benchmarks/alternated_time.py``'s records (optionally one budget):
    ``method``'s time over Selective Focus's within each round both ran, on rounds that had the machine."""
    rounds = defaultdict(dict)
    for r in records:
        if budget and r.get("budget") != budget:
            continue
        rounds[(r["model"], r["bits"], r["budget"], r["date"], r["machine"], r["round"])][r["method"]] = r
    out = defaultdict(lambda: {"sf": [], "other": [], "ratios": []})
    for (model, bits, b, date, machine, _), ms in sorted(rounds.items()):
        if "sf" not in ms or method not in ms:
            continue
        if not all(had_the_machine({**ms[m], "cores": ms[m].get("threads", 2)}) for m in ("sf", method)):
            continue
        e = out[(model, bits, b, date, machine)]
        e["sf"].append(ms["sf"]["seconds"])
        e["other"].append(ms[method]["seconds"])
        e["ratios"].append(ms[method]["seconds"] / ms["sf"]["seconds"])
    return [dict(model=k[0], bits=k[1], budget=k[2], date=k[3], machine=k[4], **v) for k, v in out.items()]


def alternated_ratio(model: str, bits: str, f: float) -> Optional[Tuple[float, str]]:
    """(QDrop / SF time, its date) for the entry at fraction ``f`` from the alternated runs: the median of the
    rounds of the latest day that has them; None when none."""
    days = [e for e in alternated_ratios(load_alternated(), "qdrop", f"f{f:g}")
            if e["model"] == model and e["bits"] == bits and e["ratios"]]
    if not days:
        return None
    latest = max(days, key=lambda e: e["date"])
    return statistics.median(latest["ratios"]), latest["date"]


def entry_fraction(model: str, bits: str, extra, qdrop: Optional[dict], sf: Optional[dict], f: float) -> Optional[float]:
    """SF's equal-time fraction for one entry: from the same-day alternated runs of ``benchmarks/alternated_time.py``
    where the entry has them (settings without extra arguments), else from the two seed-0 cells only where they
    ran on one day (``equal_fraction``); None otherwise (no time ratio across days)."""
    if not extra:
        alt = alternated_ratio(model, bits, f)
        if alt is not None:
            return float(f"{min(1.0, f * alt[0]):.2g}")
    if qdrop is None or sf is None or qdrop.get("date") != sf.get("date"):
        return None
    return equal_fraction(qdrop, sf, f)


def median_seconds(cells: List[Optional[dict]], idle_only: bool = False) -> Optional[float]:
    """The median ``method_time`` of ``cells`` (with ``idle_only``, of those that had the machine); None when
    none."""
    vals = [method_time(c) for c in cells if method_time(c) and (not idle_only or had_the_machine(c))]
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
            g = entry_fraction(m, bits, extra, seed0["qdrop"], seed0["sf"], f)
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


def cell_path(cell: Cell, f: float) -> str:
    return os.path.join(CELLS, f"f{f:g}", f"{cell.id}.json")


def is_stale(result: dict) -> bool:
    """A cell result of a tuning method from an engine whose tuning at that method's granularity differed
    from today's (recon.config.CURRENT_SINCE; results written before the version was recorded are engine 1)."""
    method = recon_config.METHODS.get(result.get("cell", {}).get("method"))
    if method is None or method.granularity is None:
        return False
    return int(result.get("engine", 1)) < recon_config.CURRENT_SINCE[method.granularity]


def read_result(path: str) -> Optional[dict]:
    """A finished cell's result file, or None while it has none."""
    if not os.path.isfile(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def read_cell(cell: Cell, f: float) -> Optional[dict]:
    return read_result(cell_path(cell, f))


def stale(cell: Cell, f: float) -> bool:
    """A finished cell whose result ``is_stale``."""
    result = read_cell(cell, f)
    return result is not None and is_stale(result)


def archive_stale(cell: Cell, f: float) -> None:
    """Moves a stale cell's result under f<F>-engine<N>/ (the report compares against it) and removes its run
    directory, so the cell runs again from the start."""
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
            "lsq-qat": 25.0, "qdrop": 273.0, "brecq": 273.0, "adaround": 300.0,
            "pdquant": 700.0}  # minutes at f = 1; PD-Quant: 2.1x QDrop in one alternated f = 0.001 round
    # (benchmarks/results/alternated-times.json), a ratio that grows with f (a whole-model forward per iteration)
    return scale * (base + f * full[cell.method])
