"""docs/results.md from the cells of python/paper_experiments.py: the tables, the figures and a verdict per claim.

    python python/paper_experiments.py --report [--f 0.01]
"""
from __future__ import annotations

import glob
import json
import os
import shutil
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from grid_plan import ABLATION, SMALL, STRESS_LOSS, TUNING, MORE_TIME, entry_fraction, load_alternated, matched_qdrop_fraction, median_seconds, CELLS
from grid_plan import is_stale as stale
import real_size
from report_tables import (NAMES, where, group, zoo_order, STALE_MARK, fmt, compare, table1, claim_sf_vs_blockwise, speed_ratio, calibration_loss, seconds, ablation, topk, qat, table4, table5, seeds_table, edges, setting_name, stress, cost_table, tally, provenance, rule_statement)

OUT = "docs/results.md"


FIGURES = "docs/figures/results"


def load_cells(f: float) -> List[dict]:
    out = []
    for path in sorted(glob.glob(os.path.join(CELLS, f"f{f:g}", "*.json"))):
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def load_archived(f: float) -> List[dict]:
    """Cells of budget ``f`` from older engines, moved aside when they were run again."""
    out = []
    for d in sorted(glob.glob(os.path.join(CELLS, f"f{f:g}-engine*"))):
        for path in sorted(glob.glob(os.path.join(d, "*.json"))):
            with open(path) as fh:
                out.append(json.load(fh))
    return out


def engine_change(f: float, cells: List[dict]) -> List[str]:
    """Network-wise entries run again after the engine changed, beside their earlier results (archived under
    f<F>-engine<N>/), their start (the calibrated model) and QDrop, with each seed's held-out check."""
    archived = load_archived(f)
    if not archived:
        return []
    old = group(archived, "t1")
    new = group([c for c in cells if not stale(c)], "t1")
    g1 = group(cells, "t1")
    lines = ["| model | bits | method | start (calibrated) | before (soft rounding) | after (hard forward) | "
             "QDrop | after vs start | after vs QDrop | held-out LDS start -> tuned |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, after in sorted(new.items(), key=zoo_order):
        if key not in old:
            continue
        model, bits, method, extra = key
        starts = [{"f1": c["start_f1"], "cell": c["cell"], "engine": c.get("engine")} for c in after
                  if c.get("start_f1") is not None]
        qd = g1.get((model, bits, "qdrop", extra))
        checks = "; ".join(f"{c['heldout']['start']['lds']:.1f} -> {c['heldout']['tuned']['lds']:.1f}"
                           for c in sorted(after, key=lambda c: c["cell"]["seed"]) if c.get("heldout"))
        lines.append(f"| {model} | {bits.upper()} | {NAMES[method]} | {fmt(starts)} | "
                     f"{fmt(old[key], mark_stale=False)} | {fmt(after)} | {fmt(qd)} | {compare(after, starts) if starts else '-'} | {compare(after, qd) if qd else '-'} | "
                     f"{checks or '-'} |")
    return lines


def other_budgets(f: float) -> Dict[float, List[dict]]:
    """The finished cells of every budget fraction other than ``f``, by fraction."""
    out = {}
    for d in glob.glob(os.path.join(CELLS, "f*")):
        try:
            g = float(os.path.basename(d)[1:])
        except ValueError:
            continue
        if g != f:
            out[g] = load_cells(g)
    return {g: cs for g, cs in sorted(out.items()) if cs}


def budget_table(f: float, cells: List[dict]) -> List[str]:
    """Table 1 entries rerun at another fraction g, beside the same entry and QDrop's at f: whether a gap closes
    with more iterations, and how a method compares with QDrop when their tuning times are about equal."""
    g1 = group(cells, "t1")

    def entry(cs: Optional[List[dict]]) -> str:
        if not cs:
            return "-"
        its = cs[0].get("iterations")
        return f"{fmt(cs)} ({its if its is not None else '-'} it, {seconds(cs)})"

    lines = [f"| model | bits | method | at f = {f:g} | f | at that f | QDrop at f = {f:g} | vs QDrop at f = {f:g} |",
             "|---|---|---|---|---|---|---|---|"]
    for g, other in other_budgets(f).items():
        entries = [(k, cs) for k, cs in group(other, "t1").items() if not k[3]]
        for (model, bits, method, _), cs in sorted(entries, key=zoo_order):
            qd = g1.get((model, bits, "qdrop", ()))
            versus = compare(cs, qd) if qd and method != "qdrop" else "-"
            lines.append(f"| {model} | {bits.upper()} | {NAMES[method]} | {entry(g1.get((model, bits, method, ())))} | "
                         f"{g:g} | {entry(cs)} | {entry(qd)} | {versus} |")
    return lines if len(lines) > 2 else []


def same_day(a: List[dict], b: List[dict]) -> bool:
    """Whether all of ``a`` and ``b`` ran on one day."""
    return len({c.get("date") for c in list(a) + list(b)}) == 1


def equal_time(f: float, cells: List[dict]) -> Tuple[str, List[str]]:
    """SF at the fraction whose tuning time matches QDrop's at ``f`` (grid_plan.entry_fraction: from same-day
    alternated runs, or seed-0 cells of one day) against QDrop at ``f``: each Small model at W4A4 and at its stress setting. Where SF
    there still took more than MORE_TIME x QDrop's time, the verdict is against QDrop rerun at SF's time."""
    others = other_budgets(f)
    rows = [f"| model | setting | QDrop at f = {f:g} | SF at f = {f:g} | equal-time f | SF there | time SF / QDrop "
            "| QDrop at SF's time | SF vs QDrop |", "|---|---|---|---|---|---|---|---|---|"]
    outcomes, ran, longer, matched, other_days = [], [], [], 0, []

    def seed0(cs):
        return next((c for c in cs or [] if c["cell"]["seed"] == 0), None)

    for table in ("t1", "stress"):
        g = group(cells, table)
        for (model, bits, method, extra), qd in sorted(g.items(), key=zoo_order):
            if method != "qdrop" or model not in SMALL or (table == "t1" and bits != "w4a4"):
                continue
            sf = g.get((model, bits, "sf", extra))
            frac = entry_fraction(model, bits, extra, seed0(qd), seed0(sf), f)
            eq = group(others.get(frac, []), table).get((model, bits, "sf", extra)) if frac else None
            if not eq:
                continue
            t_sf, t_qd = median_seconds(eq), median_seconds(qd)
            # a time ratio only between runs of one day (the same workload's time drifts between days)
            ratio = t_sf / t_qd if t_sf and t_qd and same_day(eq, qd) else None
            q = matched_qdrop_fraction(qd, eq, f)
            mq = group(others.get(q, []), table).get((model, bits, "qdrop", extra)) if q else None
            versus = compare(eq, mq or qd)
            outcomes.append(versus)
            ran += eq + (mq or [])
            matched += bool(mq)
            # QDrop's time does not scale exactly with iterations either: its rerun can still be shorter than SF's
            t_ref = median_seconds(mq) if mq else t_qd
            r_ref = t_sf / t_ref if t_sf and t_ref and same_day(eq, mq or qd) else None
            if r_ref is None:
                other_days.append(f"{model} {setting_name(bits, extra)}")
            if versus == "win" and r_ref is not None and r_ref > MORE_TIME:
                longer.append(f"{model} {setting_name(bits, extra)} {r_ref:.2f}x" + (" (its rerun)" if mq else ""))
            rows.append(f"| {model} | {setting_name(bits, extra)} | {fmt(qd)} ({seconds(qd)}) | {fmt(sf)} ({seconds(sf)}) "
                        f"| {frac:g} | {fmt(eq)} ({seconds(eq)}) | {f'{ratio:.2f}x' if ratio else '- (other days)'} "
                        f"| {f'{fmt(mq)} ({seconds(mq)}, f = {q:g}; SF {r_ref:.2f}x)' if mq and r_ref else '-'} "
                        f"| {versus} |")
    counted = [o for o in outcomes if o in ("win", "undecided", "loss")]
    if not counted:
        return ("not measured yet" if not outcomes else "undecided (single seeds only)"), (rows if outcomes else [])
    notes = []
    if matched:
        notes.append(f"against QDrop rerun at SF's time in {matched} of them")
    limit = f"more than {MORE_TIME:g}x the compared QDrop run's median time"
    notes.append(f"wins with {limit}: {', '.join(longer)}" if longer else f"no win had {limit}")  # bought with time?
    if other_days:
        notes.append(f"no time ratio where SF and QDrop ran on different days ({', '.join(other_days)}): "
                     "their equal time is not established")
    return (f"SF at QDrop's tuning time: {tally(counted, 'entry', 'entries')}" + "".join(f"; {n}" for n in notes),
            rows + ["", provenance(ran)])


def coverage(cells: List[dict], planned: Optional[list], grid: str = "", absent: Tuple[str, ...] = ()) -> List[str]:
    """How much of the planned grid has finished, per table, and ``grid``: what the plan leaves out;
    ``absent``: zoo models left out because they ship no weights."""
    if not planned:
        return []
    done = {c["id"] for c in cells}
    per = defaultdict(lambda: [0, 0])
    for p in planned:
        per[p.table][1] += 1
        per[p.table][0] += p.id in done
    names = {"t1": "Table 1 (and seeds)", "t2": "Table 2", "t3": "Table 3", "t5": "Table 5", "t7": "Table 7",
             "edges": "first/last layers", "stress": "stress settings"}
    parts = [f"{names.get(t, t)} {a}/{b}" for t, (a, b) in per.items()]
    n = sum(a for a, _ in per.values())
    missing = (f" Not in the grid: {', '.join(absent)} (no shipped weights)." if absent else "")
    return [f"Finished {n} of {len(planned)} planned cells: " + ", ".join(parts) + ". Tables and verdicts use the "
            "finished cells only; a verdict counts the comparisons it could make." + missing] + (["", grid] if grid else [])


def figures(cells: List[dict]) -> List[str]:
    os.makedirs(FIGURES, exist_ok=True)
    lines = []
    for c in cells:
        cell = c["cell"]
        if cell["table"] != "t1" or cell["method"] != "sf" or cell["bits"] != "w4a4" or cell["seed"] != 0:
            continue
        for name, label in (("curves.png", "noise-score curves"), ("selection.png", "head error levels")):
            if name == "selection.png" and cell["model"] != "ganet-s":
                continue
            src, dst = os.path.join(c["run"], name), os.path.join(FIGURES, f"{cell['model']}-{name}")
            if os.path.isfile(src):
                shutil.copyfile(src, dst)
            # a run directory is not kept with the cells: a figure copied by an earlier report stays valid
            if os.path.isfile(dst):
                lines.append(f"![{cell['model']} {label}](figures/results/{os.path.basename(dst)})")
    return lines


def write_results(f: float, planned: Optional[list] = None, grid: str = "", absent: Tuple[str, ...] = ()) -> None:
    cells = load_cells(f)
    if not cells:
        raise SystemExit(f"no finished cells under {CELLS}/f{f:g}; run python python/paper_experiments.py --run")
    machines = sorted({c["machine"] for c in cells})
    per_machine = defaultdict(list)
    for c in cells:
        per_machine[where(c)].append(c)
    ran = []  # the cells of a GPU by name: the tables do not mark them
    for m, cs in sorted(per_machine.items()):
        gpu = [c["id"] for c in cs if c.get("device") == "cuda"]
        ran.append(f"{m}: {len(cs)} cells" + (f" ({', '.join(sorted(gpu))})" if gpu else ""))
    dates = sorted({c["date"] for c in cells})
    v1, rows1 = claim_sf_vs_blockwise(cells)
    v2, rows2 = ablation(cells, load_archived(f))
    v3, rows3 = topk(cells)
    v4, rows4 = qat(cells)
    v5, rows5 = speed_ratio(load_alternated(), f"f{f:g}")
    v6, probes6, rows6 = stress(cells)
    v7, rows7 = equal_time(f, cells)
    lines = ["# Results: the paper's experiments on the zoo", "",
             f"Produced by `python python/paper_experiments.py --run --f {f:g}` then `--report`, from the shipped models. "
             f"Budget: every tuning method gets f = {f:g} of its own paper iterations (docs/recon.md). Test set: the "
             "fixed generated CULane-frame set (2000 scenes), F1 at IoU 0.5; several seeds where given as "
             "mean ±half-range (n). A seed draws the 512 calibration images and the tuning's randomness; every "
             "method of one seed sees the same calibration images.", "", rule_statement(cells), "",
             f"Machines: {'; '.join(machines)}. Dates: {', '.join(dates)}. Cells per machine: {'; '.join(ran)}.", ""]
    n_stale = sum(stale(c) for c in cells)
    if n_stale:
        n_network = sum(stale(c) for c in cells if c["cell"]["method"] in ABLATION)
        n_tuned = sum(c["cell"]["method"] not in ("aciq", "omse", "calib") for c in cells)
        lines += [f"{STALE_MARK.strip()}: an entry with cells of an earlier engine: {n_stale} of the {n_tuned} tuning "
                  f"cells ({n_network} network-wise, SF and its ablations, from before the hard forward; "
                  f"{n_stale - n_network} layer-, block-wise or QAT, from before the FP copy that gives each unit "
                  "its FP inputs and targets; docs/recon.md); `python python/paper_experiments.py --run --rerun-stale` "
                  "runs them again. Verdicts count them as they are.", ""]
    lines += coverage(cells, planned, grid, absent) + ["",
             "## Verdicts", "",
             f"- SF above QDrop and BRECQ at W4A4 and W8A4: {v1}",
             f"- Focus contributes more than Selection: {v2}",
             f"- k = 2-3 best: {v3}",
             f"- Near-QAT accuracy at a fraction of its time: {v4}",
             f"- About 6x faster than block-wise reconstruction: {v5}",
             f"- Where quantization really hurts (stress settings): {v6}",
             f"- SF vs QDrop at equal wall time: {v7}", "",
             "## Table 1", ""] + table1(cells)
    lines += ["## Tuning cost (seed 0)", "",
              "Every time on this page is a method's time beyond the calibration all methods share (`method_time`): "
              "its tuning, with a block-wise method's captures and PD-Quant's corrections inside, and Selective "
              "Focus's FP pass and noise-score curves. Cells from before cells stored it give tuning plus the curves "
              "stage (their network-wise tuning time lacks the FP pass, a few seconds on the Small models).", ""]
    lines += (cost_table(cells) or ["not measured yet"]) + [""]
    lines += ["## SF against the block-wise methods", "", "| model | bits | SF | QDrop | BRECQ | SF vs best |",
              "|---|---|---|---|---|---|"] + rows1 + [""]
    lines += ["## Table 2: ablation (W4A4; F1, tuning time)", "", "| model | " + " | ".join(NAMES[m] for m in ABLATION) + " |",
              "|---|" + "---|" * len(ABLATION)] + rows2 + [""]
    loss = calibration_loss(cells)
    if loss:
        lines += ["GANet-S as in the paper; BezierLaneNet-S, where calibration loses most among the four models of "
                  "the calibration baselines (benchmarks/results/calibration-f1.md); LSTR-S, where it loses most among "
                  "the Small models of Table 1. " + loss, ""]
    lines += ["## Table 3: QAT (W8A4; F1, tuning time)", "", "| model | LSQ+ QAT | QDrop | SF |", "|---|---|---|---|"] + rows4 + [""]
    lines += ["## Table 7: top-k on GANet-S (TuSimple frame, W4A4)", "", "| k | accuracy | F1 |", "|---|---|---|"] + rows3 + [""]
    sections = [("## Seeds (Table 1 entries with several seeds)", seeds_table(cells)),
                ("## Table 4: Selective Focus at W8A4 per scenario (TP/FP/FN)", table4(cells)),
                ("## Table 5: TuSimple frame (accuracy / F1)", table5(cells)),
                ("## First and last layers at W4A4 too", edges(cells))]
    for title, rows in sections:
        lines += [title, ""] + (rows or ["not measured yet"]) + [""]
    lines += ["## Stress settings: where calibration alone loses at least 5 F1", "",
              "Each Small model's default calibration (the start of every tuning method) at settings harsher than "
              "Table 1's, mildest first: W4A4 with the first and last layers at 4 bits too, W4A3, W3A3, W2A4 (F1, "
              f"change from FP). Chosen: the first that loses at least {STRESS_LOSS:g} F1. There the calibration, QDrop "
              "and SF run with seeds 0-2 (same calibration images per seed); recovered = share of the calibration's "
              "loss won back; SF vs QDrop and the best method follow the paired rule above.", ""]
    lines += (probes6 or ["not measured yet"]) + [""] + (rows6 or ["no chosen setting measured yet"]) + [""]
    lines += ["## SF vs QDrop at equal time", "",
              f"SF rerun (seeds 0-2) at the fraction of its paper iterations whose tuning time matches QDrop's at f = "
              f"{f:g} on the same entry (f x QDrop's / SF's tuning seconds of the idle seed-0 cells, two significant "
              "digits; `python python/paper_experiments.py --run --equal-time`), against QDrop at f = "
              f"{f:g}: F1 and median tuning time. Where SF there still took more than {MORE_TIME:g}x QDrop's median time "
              "(the fraction comes from one seed-0 ratio, and time does not scale exactly with iterations), QDrop "
              "runs again at the fraction matching SF's time, and the last column (paired rule above) compares SF "
              "with that run.", ""]
    lines += (rows7 or ["not measured yet"]) + [""]
    lines += ["## Speed at equal f", "",
              "`python benchmarks/alternated_time.py`: per entry Selective Focus and QDrop from one calibrated start "
              "in one process, alternated SF / QDrop round by round on an idle machine, each timed for all it needs "
              "beyond calibration (SF: curves and tuning with its FP pass; QDrop: tuning with its captures); the "
              "ratio is taken within a round, so the day's drift cancels. Seconds per round.", "",
              "| model | bits | budget | SF s | QDrop s | QDrop / SF per round | median (range) | date, machine |",
              "|---|---|---|---|---|---|---|---|"] + (rows5 or ["not measured yet"]) + [""]
    budgets = budget_table(f, cells)
    if budgets:
        lines += ["## Other budgets", "",
                  f"Table 1 entries rerun at another fraction of each method's paper iterations, beside the same entry "
                  f"and QDrop's at f = {f:g} (F1, iterations, median tuning time): whether a gap closes with more "
                  "iterations, and how the method compares with QDrop when their tuning times are about equal. The last "
                  "column follows the paired rule above.", ""] + budgets + [""]
    change = engine_change(f, cells)
    if change:
        lines += ["## Network-wise tuning with the hard forward", "",
                  "Entries run again after the network-wise methods moved to the hard rounding in the forward pass "
                  "(docs/recon.md, \"Diagnosis\"), beside their earlier results (soft rounding, archived under "
                  f"benchmarks/results/paper/f{f:g}-engine1/), their start (the default calibration of the same "
                  "seeds) and QDrop from that start. Comparisons follow the paired rule above; the last column is each "
                  "seed's held-out check (Lane Distortion Score against the FP lanes on 128 held-out calibration-like "
                  "images, start -> tuned).", ""] + change + [""]
    lines += real_size.section(f)
    figs = figures(cells)
    if figs:
        lines += ["## Figures", ""] + figs + [""]
    with open(OUT, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    raw = os.path.join("benchmarks/results", f"paper-f{f:g}.json")
    with open(raw, "w") as fh:
        json.dump(cells, fh, indent=1)
    print(f"wrote {OUT} and {raw} from {len(cells)} cells")


__all__ = ["write_results", "SMALL", "TUNING"]
