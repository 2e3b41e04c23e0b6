"""The paper's measurements on published architectures at their real size, trained on generated scenes
(python/train_published.py -> checkpoints/NAME-synth.pth): the calibration table and the tuning methods.

    python python/real_size.py --run [--models ufld-r18 ...] [--f 0.01] [--seeds 0]   # each cell once
    python python/real_size.py --run --bits w4a4 --methods calib omse   # only those cells, in that order
    python python/real_size.py --list                                                # the plan, done or not
    python python/real_size.py --check     # each trained checkpoint, loaded through --checkpoint, at its floor

Cells: ACIQ, OMSE and the default calibration at W8A8, W8A4 and W4A4; QDrop and Selective Focus at W8A4 and
W4A4 at the same fraction f of each method's paper iterations (the budget rule of the zoo's grid); where
calibration alone loses under 5 F1 at W4A4, the zoo's stress rule (probes mildest first, then calibration,
QDrop and SF at the first setting that loses 5); the same 512 calibration images per seed, the 2000-scene test set, the raw tuned model (--keep-tuned). Each cell is one
``python -m selfocus_ext.tune`` process, so its peak resident memory is its own (os.wait4); its result goes to
benchmarks/results/real-size/f{f}/ID.json (F1, per-image rows for the paired rule, the method's seconds, the
peak, the machine), its run directory under runs/real-size (--resume: an interrupted cell continues). The
"Real size" section of docs/results.md is written from these files by ``section()`` (results_report.py), followed by
the written reading of them (f<F>/reading.md), if there is one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import grid_cell
import grid_plan
from grid_plan import TEST_SCENES, Cell
from selfocus_ext.files import atomic_write_json

CHECKPOINTS = "checkpoints"
# where a checkpoint too large for the repository (over 30 MB) is kept between sessions: its card stays in
# CHECKPOINTS with the SHA-256 and the command that rebuilds it
CACHED = os.path.join(os.environ.get("SELFOCUS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "selfocus_ext")),
                      "checkpoints")
CELLS = "benchmarks/results/real-size"
READING = "reading.md"  # what the cells show, in words: the section's closing paragraphs
RUNS = "runs/real-size"
CALIBRATION = ["aciq", "omse", "calib"]
CALIBRATION_BITS = ["w8a8", "w8a4", "w4a4"]
TUNING = ["qdrop", "sf"]
TUNING_BITS = ["w8a4", "w4a4"]
NAMES = {"aciq": "ACIQ", "omse": "OMSE", "calib": "calibration (default)", "qdrop": "QDrop", "sf": "SF"}


@dataclass(frozen=True)
class RealCell:
    model: str
    bits: str
    method: str
    seed: int = 0
    extra: Tuple[str, ...] = ()  # further tune arguments (a stress setting's --first-last-at-bits)

    @property
    def id(self) -> str:
        tail = "".join(e.strip("-").replace(" ", "") for e in self.extra)
        return f"{self.model}-{self.bits}-{self.method}-s{self.seed}" + (f"-{tail}" if tail else "")


def trained_models(root: Optional[str] = None) -> List[str]:
    """The published models with a trained model's card under ``root`` (default CHECKPOINTS)."""
    root = CHECKPOINTS if root is None else root
    if not os.path.isdir(root):
        return []
    return sorted(n[:-len("-synth.json")] for n in os.listdir(root) if n.endswith("-synth.json"))


def checkpoint_file(model: str) -> str:
    """The trained checkpoint: in the repository (CHECKPOINTS) or, for one too large for it, in the cache; a
    clear stop naming the command that rebuilds it otherwise."""
    for root in (CHECKPOINTS, CACHED):
        path = os.path.join(root, f"{model}-synth.pth")
        if os.path.isfile(path):
            return path
    card = os.path.join(CHECKPOINTS, f"{model}-synth.json")
    rebuild = _card(model).get("command") if os.path.isfile(card) else f"python python/train_published.py --model {model}"
    raise SystemExit(f"{model}: no trained checkpoint {model}-synth.pth in {CHECKPOINTS}/ or {CACHED}/ "
                     f"(rebuild it: {rebuild}; its card gives the SHA-256)")


def plan(models: List[str], seeds: List[int], f: Optional[float] = None, bits: Optional[List[str]] = None,
         methods: Optional[List[str]] = None) -> List[RealCell]:
    """The cells: the calibration table and the tuning methods; with ``f``, also the stress cells that the
    finished ones call for so far (``stress_cells``). ``bits`` / ``methods``: only the cells at these settings
    / of these methods, in the order given."""
    if bits is not None or methods is not None:
        every = plan(models, seeds, f)
        return [c for b in (bits or [None]) for x in (methods or [None]) for c in every
                if b in (None, c.bits) and x in (None, c.method)]
    cells = []
    for m in models:
        for s in seeds:
            cells += [RealCell(m, b, x, s) for b in CALIBRATION_BITS for x in CALIBRATION]
            cells += [RealCell(m, b, x, s) for b in TUNING_BITS for x in TUNING]
        if f is not None:
            cells += stress_cells(m, seeds, f)
    return cells


def _stress_probes(model: str, f: float) -> Tuple[List[RealCell], Optional[RealCell]]:
    """The stress probes the finished cells call for so far, and the one that decided the setting (or None)."""
    base = read(RealCell(model, "w4a4", "calib"), f)
    if base is None or base["fp_f1"] - base["f1"] >= grid_plan.STRESS_LOSS:
        return [], None
    probes = []
    for bits, extra in grid_plan.STRESS_PROBES:
        probe = RealCell(model, bits, "calib", 0, tuple(extra))
        probes.append(probe)
        result = read(probe, f)
        if result is None:
            return probes, None
        if result["fp_f1"] - result["f1"] >= grid_plan.STRESS_LOSS:
            return probes, probe
    return probes, None


def stress_cells(model: str, seeds: List[int], f: float) -> List[RealCell]:
    """The small models' stress rule at real size: where the default calibration alone loses under
    STRESS_LOSS F1 at W4A4 (seed 0), probe the zoo's stress settings mildest first (calibration, seed 0) and
    run calibration, QDrop and SF over ``seeds`` at the first that loses at least that much. Only what the
    finished cells decide: the next probe while one is missing, nothing while the W4A4 cell is."""
    probes, setting = _stress_probes(model, f)
    if setting is None:
        return probes
    return probes + [RealCell(model, setting.bits, x, s, setting.extra) for s in seeds for x in ["calib"] + TUNING
                     if (x, s) != ("calib", 0)]


def stress_setting(model: str, f: float) -> Optional[RealCell]:
    """The probe cell of the model's stress setting, once decided (None otherwise)."""
    return _stress_probes(model, f)[1]


def cell_path(c: RealCell, f: float) -> str:
    return os.path.join(CELLS, f"f{f:g}", c.id + ".json")


def read(c: RealCell, f: float) -> Optional[dict]:
    return grid_plan.read_result(cell_path(c, f))


def run_cell(c: RealCell, f: float, device: str = "cpu", test: int = TEST_SCENES) -> dict:
    out = os.path.join(RUNS, f"f{f:g}", c.id)
    ckpt = checkpoint_file(c.model)
    cmd = [sys.executable, "-m", "selfocus_ext.tune", "--model", c.model, "--checkpoint", ckpt, "--data", "synth",
           "--bits", c.bits, "--method", c.method, "--budget", f"f{f:g}", "--seed", str(c.seed),
           "--test", str(test), "--out", out, "--resume", "--keep-tuned", "--quiet", "--device", device, *c.extra]
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    with open(os.path.join(out, "log.txt"), "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{c.id}: the tune command stopped with exit code {code} (log: {out}/log.txt)")
    with open(os.path.join(out, "progress.json")) as fh:
        progress = json.load(fh)
    key = "tuned" if "tuned" in progress else "calibrated"
    result = dict(cell=asdict(c), id=c.id, f=f, run=out, f1=progress[key]["f1"], fp_f1=progress["fp"]["f1"],
                  start_f1=progress["calibrated"]["f1"], image_counts=grid_cell.image_counts(out, key),
                  method_seconds=grid_cell.method_seconds(progress), seconds=progress.get("seconds", {}),
                  peak_mb=round(usage.ru_maxrss / 1024, 1), wall_seconds=round(time.time() - t0, 1),
                  machine=grid_cell.machine_name(device), device=device, date=time.strftime("%Y-%m-%d"))
    atomic_write_json(result, cell_path(c, f))
    return result


def zoo_rows_for(model: str) -> List[str]:
    """The zoo's Small and Mid models of a published model's family (none for a family the zoo lacks)."""
    family = model.split("-")[0]
    return [f"{family}-{size}" for size in ("s", "m")] if family in grid_plan.FAMILIES else []


def zoo_cells(zoo: str, bits: str, method: str, f: float, seeds) -> List[Optional[dict]]:
    """Table 1's cells of a zoo model (the same methods, budget and test set), for the rows beside."""
    return [grid_plan.read_cell(Cell("t1", zoo, bits, method, s), f) for s in seeds]


def _card(model: str) -> dict:
    with open(os.path.join(CHECKPOINTS, f"{model}-synth.json")) as fh:
        return json.load(fh)


def _entry(cells: List[Optional[dict]]) -> str:
    done = [c for c in cells if c]
    if not done:
        return "-"
    f1 = [c["f1"] for c in done]
    mean = sum(f1) / len(f1)
    return f"{mean:.2f}" if len(f1) == 1 else f"{mean:.2f} ±{(max(f1) - min(f1)) / 2:.2f} ({len(f1)})"


def _fp(by_method: Dict[str, List[Optional[dict]]]) -> str:
    """The float model's F1 as any of a row's cells recorded it."""
    fp = next((c["fp_f1"] for cs in by_method.values() for c in cs if c and "fp_f1" in c), None)
    return "-" if fp is None else f"{fp:.2f}"


def sf_minus_qdrop(sf: List[Optional[dict]], qdrop: List[Optional[dict]]) -> str:
    """SF's F1 minus QDrop's by the results' paired rule (report_tables.paired: per shared seed, plus the test
    images' common error): the mean difference with its 95 % interval and verdict from two seeds on; from one
    seed the difference alone, marked as deciding nothing."""
    from report_tables import paired

    a = [c for c in sf if c and "cell" in c]
    b = [c for c in qdrop if c and "cell" in c]
    if not a or not b:
        return "-"
    r = paired(a, b)
    if r["seeds"] == 0:
        return "-"
    if r["seeds"] < 2:
        return f"{r['diff']:+.2f} (1 seed: undecided)"
    return f"{r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] {r['verdict']}"


def section(f: float, models: Optional[List[str]] = None, seeds=(0, 1, 2)) -> List[str]:
    """The "Real size" tables of docs/results.md from the finished cells (empty when none)."""
    models = trained_models() if models is None else models
    cells = {c.id: read(c, f) for c in plan(models, list(seeds), f)}
    if not any(cells.values()):
        return []
    lines = ["## Real size: published architectures trained on generated scenes", "",
             f"Produced by `python python/real_size.py --run --f {f:g}`: each model trained from scratch on generated "
             "scenes (`python/train_published.py`, its card in checkpoints/), every method at f = "
             f"{f:g} of its paper iterations, 512 calibration images, the 2000-scene test set, F1 at IoU 0.5.", "",
             "| model | FP F1 | training | " + " | ".join(f"{NAMES[m]} {b.upper()}" for b in CALIBRATION_BITS
                                                       for m in CALIBRATION) + " |",
             "|---|---|---|" + "---|" * (len(CALIBRATION) * len(CALIBRATION_BITS))]
    for m in models:
        card = _card(m)
        at = f", at {'x'.join(str(v) for v in card['input'])}" if "input" in card else ""
        below = f" (below its floor {card['floor']:.2f})" if card.get("at_floor") is False else ""
        row = [m, f"{card['f1']['total']:.2f}{below}", f"{card['steps']} steps, {card['hours']} h{at}"]
        for b in CALIBRATION_BITS:
            row += [_entry([cells[RealCell(m, b, x, s).id] for s in seeds]) for x in CALIBRATION]
        lines.append("| " + " | ".join(row) + " |")
        for z in zoo_rows_for(m):
            fp = next((c["fp_f1"] for b in CALIBRATION_BITS for c in zoo_cells(z, b, "aciq", f, (0,)) if c), None)
            row = [f"{z} (zoo)", "-" if fp is None else f"{fp:.2f}", "Table 1"]
            for b in CALIBRATION_BITS:
                row += [_entry(zoo_cells(z, b, x, f, seeds)) for x in CALIBRATION]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| model | bits | FP | calibration | QDrop | SF | SF - QDrop | QDrop time | SF time | QDrop peak | SF peak |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        settings = [(b, (), False) for b in TUNING_BITS]
        stress = stress_setting(m, f)
        if stress is not None:
            settings.append((stress.bits, stress.extra, True))
        for b, extra, is_stress in settings:
            got: Dict[str, List[Optional[dict]]] = {x: [cells.get(RealCell(m, b, x, s, extra).id) for s in seeds]
                                                    for x in ["calib"] + TUNING}
            s0 = {x: got[x][0] for x in TUNING}
            t = [f"{s0[x]['method_seconds']:.0f} s" if s0[x] else "-" for x in TUNING]
            p = [f"{s0[x]['peak_mb'] / 1024:.1f} GB" if s0[x] else "-" for x in TUNING]
            label = b.upper() + (" stress" + "".join(" " + e for e in extra) if is_stress else "")
            lines.append(f"| {m} | {label} | {_fp(got)} | {_entry(got['calib'])} | "
                         f"{_entry(got['qdrop'])} | {_entry(got['sf'])} | {sf_minus_qdrop(got['sf'], got['qdrop'])} | "
                         f"{t[0]} | {t[1]} | {p[0]} | {p[1]} |")
            if is_stress:
                continue
            for z in zoo_rows_for(m):
                zc = {x: zoo_cells(z, b, x, f, seeds) for x in ["calib"] + TUNING}
                zt = [f"{grid_plan.method_time(zc[x][0]):.0f} s" if zc[x][0] and grid_plan.method_time(zc[x][0]) else "-"
                      for x in TUNING]
                lines.append(f"| {z} (zoo) | {b.upper()} | {_fp(zc)} | {_entry(zc['calib'])} | "
                             f"{_entry(zc['qdrop'])} | {_entry(zc['sf'])} | {sf_minus_qdrop(zc['sf'], zc['qdrop'])} | "
                             f"{zt[0]} | {zt[1]} | - | - |")
    done = [c for c in cells.values() if c]
    hours = sum(c["wall_seconds"] for c in done) / 3600
    machines = sorted({c["machine"] for c in done})
    lines += ["", "Rows marked (zoo): the same family's Small and Mid zoo models (400x160) from Table 1, same budget rule "
              "and test set; the calibration columns there are Table 1's ACIQ and OMSE and, where run, the default.",
              "", f"Times: the method's own seconds (tuning with its captures or FP pass, and SF's curves), seed 0; "
              f"peak: the tune process's peak resident memory. SF - QDrop: the results' paired rule (per shared seed, plus the "
              f"test images' common error; 95 % interval and verdict from two seeds on, one seed decides nothing). A "
              f"stress row: the zoo's rule where calibration alone loses under {grid_plan.STRESS_LOSS:g} F1 at W4A4. {len(done)} cells, {hours:.1f} hours of wall time on "
              f"{'; '.join(machines)}.", ""]
    reading = os.path.join(CELLS, f"f{f:g}", READING)
    if os.path.isfile(reading):  # the written reading of these numbers, kept beside the cells it reads
        with open(reading) as fh:
            lines += [fh.read().strip(), ""]
    return lines


def check(models: List[str], scenes: int = TEST_SCENES) -> List[str]:
    """Each trained checkpoint loaded as a user's (``registry.load(NAME, checkpoint=...)``) and scored on the
    generated test set: the lines that fall below their card's floor (empty when every one holds)."""
    from selfocus_ext.metrics import culane
    from selfocus_ext.models import registry
    from selfocus_ext.workflow.data import DataSpec, evaluation_set
    from selfocus_ext.workflow.evaluation import evaluate

    below = []
    for m in models:
        card = _card(m)
        model = registry.load(m, checkpoint=checkpoint_file(m))
        counts = evaluate(model, evaluation_set(DataSpec("synth"), scenes, model.model_input))["counts"]
        f1 = culane.Counts(*counts["total"]).f1 * 100
        line = f"{m}: F1 {f1:.2f} on {scenes} scenes (card {card['f1']['total']:.2f}), floor {card['floor']:.2f}"
        print(line + ("" if f1 >= card["floor"] else "  BELOW"))
        if f1 < card["floor"]:
            below.append(line)
    return below


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="store_true", help="run every planned cell that has no result yet")
    p.add_argument("--list", action="store_true", help="print the plan and which cells are done")
    p.add_argument("--check", action="store_true", help="score each trained checkpoint against its floor")
    p.add_argument("--models", nargs="+", default=None, help="default: every model with a trained checkpoint")
    p.add_argument("--f", type=float, default=0.01)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--bits", nargs="+", default=None, metavar="WxAy",
                   help="only the cells at these settings (a stress cell counts by its bits), e.g. the 4-bit ones "
                        "first when time is short")
    p.add_argument("--methods", nargs="+", default=None, choices=CALIBRATION + TUNING,
                   help="only the cells of these methods, in this order")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    a = p.parse_args(argv)
    known = CALIBRATION_BITS + [b for b, _ in grid_plan.STRESS_PROBES if b not in CALIBRATION_BITS]
    if a.bits is not None and not set(a.bits) <= set(known):
        p.error(f"--bits: expected some of {', '.join(known)}, got {' '.join(a.bits)}")
    models = a.models or trained_models()
    if not models:
        p.error(f"--models: no trained checkpoint under {CHECKPOINTS}/ (python python/train_published.py --model NAME)")
    if a.check:
        return 1 if check(models) else 0
    cells = plan(models, a.seeds, a.f, a.bits, a.methods)
    if a.list or not a.run:
        for c in cells:
            print(f"{'done' if read(c, a.f) else '    '}  {c.id}")
        return 0
    from tqdm import tqdm

    # the stress cells depend on finished ones: the plan is read again after every cell
    bar = tqdm(desc="real-size cells", unit="cell")
    while True:
        todo = [c for c in plan(models, a.seeds, a.f, a.bits, a.methods) if read(c, a.f) is None]
        if not todo:
            break
        bar.total = bar.n + len(todo)
        c = todo[0]
        r = run_cell(c, a.f, a.device)
        bar.update(1)
        tqdm.write(f"{c.id}: F1 {r['f1']:.2f} (FP {r['fp_f1']:.2f}), {r['method_seconds']:.0f} s, peak {r['peak_mb']:.0f} MB")
    bar.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
