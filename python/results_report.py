"""docs/results.md from the cells of python/paper_experiments.py: the tables, the figures and a verdict per claim.

    python python/paper_experiments.py --report [--f 0.01]
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import statistics
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from paper_experiments import (ABLATION, ABLATION_MODELS, ALL_METHODS, CELLS, SMALL, STRESS_LOSS, STRESS_METHODS,
                               STRESS_PROBES, TUNING, ZOO)
from paper_experiments import MORE_TIME, equal_fraction, had_the_machine, matched_qdrop_fraction, median_seconds
from paper_experiments import is_stale as stale

OUT = "docs/results.md"
FIGURES = "docs/figures/results"
NAMES = {"aciq": "ACIQ", "omse": "OMSE", "adaround": "AdaRound", "brecq": "BRECQ", "qdrop": "QDrop",
         "sf": "SF", "sf-nofocus": "w/o Focus", "sf-noselect": "w/o Selection", "network": "w/o both",
         "lsq-qat": "LSQ+ QAT", "calib": "calibration"}


def load_cells(f: float) -> List[dict]:
    out = []
    for path in sorted(glob.glob(os.path.join(CELLS, f"f{f:g}", "*.json"))):
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def where(c: dict) -> str:
    """The machine a cell ran on, short: the GPU's name, or the CPU's core count."""
    if c.get("device") == "cuda":
        return c["machine"].split(",")[0]
    return f"{c.get('cores', '?')}-core CPU"


def idle(c: dict) -> bool:
    """Whether the run had the machine: load average below the core count at start and end."""
    return had_the_machine(c)


def group(cells: List[dict], *tables: str) -> Dict[Tuple, List[dict]]:
    """Cells of the given tables by (model, bits, method, extra); several tables share cells whose settings
    are equal (paper_experiments.plan runs those once, under Table 1 or 5)."""
    g = defaultdict(list)
    for c in cells:
        cell = c["cell"]
        if cell["table"] in tables:
            g[(cell["model"], cell["bits"], cell["method"], tuple(cell.get("extra", [])))].append(c)
    return g


def zoo_order(item: Tuple[Tuple, List[dict]]) -> Tuple:
    """Sort key for group()'s items: the zoo's model order, then bits and method."""
    (model, bits, method, _), _ = item
    return ZOO.index(model), bits, method


def stats(cs: List[dict], key: str = "f1") -> Tuple[float, float, int]:
    vals = [c[key] for c in cs if c.get(key) is not None]
    if not vals:
        return float("nan"), 0.0, 0
    return statistics.fmean(vals), (max(vals) - min(vals)) if len(vals) > 1 else 0.0, len(vals)


STALE_MARK = " †"


def fmt(cs: Optional[List[dict]], key: str = "f1", mark_stale: bool = True) -> str:
    if not cs:
        return "-"
    mean, spread, n = stats(cs, key)
    mark = STALE_MARK if mark_stale and any(stale(c) for c in cs) else ""
    return (f"{mean:.2f}" if n == 1 else f"{mean:.2f} ±{spread / 2:.2f} ({n})") + mark


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
        starts = [{"f1": c["start_f1"]} for c in after if c.get("start_f1") is not None]
        qd = g1.get((model, bits, "qdrop", extra))
        checks = "; ".join(f"{c['heldout']['start']['lds']:.1f} -> {c['heldout']['tuned']['lds']:.1f}"
                           for c in sorted(after, key=lambda c: c["cell"]["seed"]) if c.get("heldout"))
        lines.append(f"| {model} | {bits.upper()} | {NAMES[method]} | {fmt(starts)} | "
                     f"{fmt(old[key], mark_stale=False)} | {fmt(after)} | {fmt(qd)} | {compare(after, starts) if starts else '-'} | {compare(after, qd) if qd else '-'} | "
                     f"{checks or '-'} |")
    return lines


def compare(a: List[dict], b: List[dict]) -> str:
    """'win' / 'loss' when the means differ by more than the larger seed spread, else 'tie'; with one seed on
    both sides there is no spread to judge by: 'higher' / 'lower' (indicative, not counted as a result)."""
    ma, sa, na = stats(a)
    mb, sb, nb = stats(b)
    if max(na, nb) < 2:
        return "higher" if ma > mb else "lower" if ma < mb else "tie"
    margin = max(sa, sb, 0.0)
    if ma - mb > margin:
        return "win"
    if mb - ma > margin:
        return "loss"
    return "tie"


def table1(cells: List[dict]) -> List[str]:
    g = group(cells, "t1")
    lines = []
    for bits in ("w8a8", "w8a4", "w4a4"):
        methods = ["aciq", "qdrop", "sf"] if bits == "w8a8" else ALL_METHODS
        lines += [f"### {bits.upper()}", "", "| model | FP | " + " | ".join(NAMES[m] for m in methods) + " |",
                  "|---|---|" + "---|" * len(methods)]
        for model in ZOO:
            row = [g.get((model, bits, m, ())) for m in methods]
            if not any(row):
                continue
            fp = next((c[0]["fp_f1"] for c in row if c), None)
            lines.append(f"| {model} | {fp:.2f} | " + " | ".join(fmt(c) for c in row) + " |")
        lines.append("")
    return lines


def claim_sf_vs_blockwise(cells: List[dict]) -> Tuple[str, List[str]]:
    g = group(cells, "t1")
    tally = defaultdict(int)
    partial = defaultdict(int)  # cells where only one of the rivals ran (the trimmed grid's Mid rows): not counted
    rows = []
    for bits in ("w4a4", "w8a4"):
        for model in ZOO:
            sf = g.get((model, bits, "sf", ()))
            rivals = [g.get((model, bits, m, ())) for m in ("qdrop", "brecq")]
            present = [r for r in rivals if r]
            if not sf or not present:
                continue
            outcome = compare(sf, max(present, key=lambda cs: stats(cs)[0]))
            if len(present) < len(rivals):
                partial[outcome] += 1
                outcome += f" (vs {NAMES[present[0][0]['cell']['method']]} only)"
            else:
                tally[outcome] += 1
            rows.append(f"| {model} | {bits.upper()} | {fmt(sf)} | {fmt(rivals[0])} | {fmt(rivals[1])} | {outcome} |")
    n = tally["win"] + tally["tie"] + tally["loss"]
    single = tally["higher"] + tally["lower"]
    tail = (f"; {single} more with one seed, not counted: SF higher in {tally['higher']}, lower in "
            f"{tally['lower']}" if single else "")
    if partial:
        tail += (f"; {sum(partial.values())} more against one rival only, not counted: SF "
                 + ", ".join(f"{k} in {v}" for k, v in sorted(partial.items())))
    if not n:
        return (f"not decided (no cell with several seeds yet{tail})" if single else "not measured"), rows
    verdict = ("reproduced" if tally["win"] > n / 2 and not tally["loss"] else
               "not reproduced" if tally["win"] <= tally["loss"] else "mixed")
    return f"{verdict} (SF wins {tally['win']}, ties {tally['tie']}, loses {tally['loss']} of {n} cells{tail})", rows


def speed_ratio(cells: List[dict]) -> Tuple[str, List[str]]:
    g = group(cells, "t1")
    rows, ratios = [], []
    for model in ZOO:
        for bits in ("w4a4", "w8a4"):
            sf, qd = g.get((model, bits, "sf", ())), g.get((model, bits, "qdrop", ()))
            if not sf or not qd:
                continue
            a, b = (min(cs, key=lambda c: c["cell"]["seed"]) for cs in (sf, qd))
            if not (a.get("tuning_seconds") and b.get("tuning_seconds")):
                continue
            if a["machine"] != b["machine"]:
                continue  # times from two machines make no ratio
            r = b["tuning_seconds"] / a["tuning_seconds"]
            ok = idle(a) and idle(b)
            rows.append(f"| {model} | {bits.upper()} | {a['tuning_seconds']:.0f} s ({a['iterations']} it) | "
                        f"{b['tuning_seconds']:.0f} s ({b['iterations']} it) | {r:.1f}x | "
                        f"{where(a)}, {'idle' if ok else 'loaded'} |")
            if ok:
                ratios.append(r)
    if not ratios:
        return "not measured", rows
    med = statistics.median(ratios)
    verdict = "reproduced" if med >= 4 else "mixed" if med >= 2 else "not reproduced"
    return f"{verdict} (QDrop / SF tuning time at equal f: median {med:.1f}x over {len(ratios)} idle cells)", rows


def calibration_loss(cells: List[dict]) -> Optional[str]:
    """Why Table 2's models: F1 lost at W4A4 by the better calibration-only method (ACIQ, OMSE), per Small model
    (the ablation runs on Small models, so a Mid model's loss would not explain the choice)."""
    g = group(cells, "t1")
    losses = {}
    for model in SMALL:
        cal = [cs[0] for m in ("aciq", "omse") for cs in [g.get((model, "w4a4", m, ()))] if cs]
        if cal:
            losses[model] = cal[0]["fp_f1"] - max(c["f1"] for c in cal)
    if not losses:
        return None
    ranked = sorted(losses.items(), key=lambda kv: -kv[1])
    return ("F1 lost at W4A4 by calibration alone (FP - best of ACIQ, OMSE): " +
            ", ".join(f"{m} {v:.2f}" for m, v in ranked) + f"; largest: {ranked[0][0]}.")


def common_seeds(entries: Dict) -> Dict:
    """The entries restricted to the seeds all of them have, so that their means compare like with like."""
    shared = set.intersection(*({c["cell"]["seed"] for c in cs} for cs in entries.values()))
    return {k: [c for c in cs if c["cell"]["seed"] in shared] for k, cs in entries.items()}


def seconds(cs: List[dict]) -> str:
    med = median_seconds(cs)
    return f"{med:.0f} s" if med is not None else "- s"


def ablation(cells: List[dict], archived: List[dict] = ()) -> Tuple[str, List[str]]:
    """Focus contributes more than Selection exactly when removing it costs more: the run without Selection
    scores above the run without Focus, beyond the seeds' spread. The full method's cells come from the
    variants' engine (an archived run when SF was run again and the variants were not)."""
    g = group(cells, "t2", "t1")
    old = group(list(archived), "t1")
    rows, outcomes, gaps = [], [], []
    for model in ABLATION_MODELS:
        cs = {m: g.get((model, "w4a4", m, ())) for m in ABLATION}
        if not all(cs.values()):
            continue
        variants_stale = any(stale(c) for m in ABLATION if m != "sf" for c in cs[m])
        if variants_stale and not any(stale(c) for c in cs["sf"]) and old.get((model, "w4a4", "sf", ())):
            cs["sf"] = old[(model, "w4a4", "sf", ())]
        cs = common_seeds(cs)
        rows.append(f"| {model} | " + " | ".join(f"{fmt(cs[m])} ({seconds(cs[m])})" for m in ABLATION) + " |")
        f1 = {m: stats(v)[0] for m, v in cs.items()}
        outcomes.append(compare(cs["sf-noselect"], cs["sf-nofocus"]))
        gaps.append(f"{model}: Focus {f1['sf'] - f1['sf-nofocus']:+.2f}, Selection {f1['sf'] - f1['sf-noselect']:+.2f}"
                    f" ({outcomes[-1]})")
    if not outcomes:
        return "not measured", rows
    detail = f"per model, Focus's contribution against Selection's: {'; '.join(gaps)}"
    return judge(outcomes, detail), rows


def judge(outcomes: List[str], detail: str) -> str:
    """One verdict from per-model outcomes of compare(): reproduced when the claim wins beyond the spread in
    every model, not reproduced when it wins in none; single-seed outcomes decide nothing."""
    if any(o in ("higher", "lower") for o in outcomes):
        guess = ("reproduced" if all(o == "higher" for o in outcomes) else
                 "not reproduced" if "higher" not in outcomes else "mixed")
        return f"not decided (would read {guess}; one seed per entry: indicative only) ({detail})"
    wins = outcomes.count("win")
    v = "reproduced" if wins == len(outcomes) else "not reproduced" if wins == 0 else "mixed"
    return (f"{v} (win {wins}, tie {outcomes.count('tie')}, loss {outcomes.count('loss')} of {len(outcomes)}; "
            f"a tie is a difference within the seeds' spread; {detail})")


def topk(cells: List[dict]) -> Tuple[str, List[str]]:
    from selfocus_ext.recon.config import default_top_k

    def k_of(extra: Tuple) -> int:
        return int(extra[1]) if len(extra) > 1 else default_top_k(3)  # no --top-k: the default, GANet has 3 heads

    g = {k_of(key[3]): v for key, v in group(cells, "t7", "t5").items() if key[:3] == ("ganet-s", "w4a4", "sf")}
    if not g:
        return "not measured", []
    g = common_seeds(g)
    rows = [f"| {k} | {fmt(cs, 'accuracy')} | {fmt(cs)} |" for k, cs in sorted(g.items())]
    if len(g) < 2 or not {2, 3} & set(g) or not set(g) - {2, 3}:
        return f"not measured (finished: k = {', '.join(map(str, sorted(g)))})", rows
    # the claim: the best of k = 2, 3 above every other k
    best = max((k for k in g if k in (2, 3)), key=lambda k: stats(g[k])[0])
    outcomes = [compare(g[best], g[k]) for k in sorted(g) if k not in (2, 3)]
    means = ", ".join(f"k = {k}: {stats(cs)[0]:.2f}" for k, cs in sorted(g.items()))
    return (judge(outcomes, f"best of k = 2, 3: k = {best}; F1 {means}; GANet-S has three heads, so k = 4 does "
                            "not exist"), rows)


def qat(cells: List[dict]) -> Tuple[str, List[str]]:
    g = group(cells, "t3", "t1")
    rows, verdicts, facts = [], [], []
    for model in ("condlane-s", "resa-s"):
        cs = {m: g.get((model, "w8a4", m, ())) for m in ("lsq-qat", "qdrop", "sf")}
        if not all(cs.values()):
            continue
        rows.append(f"| {model} | " + " | ".join(f"{stats(v)[0]:.2f} ({v[0].get('tuning_seconds') or 0:.0f} s)"
                                              for v in cs.values()) + " |")
        q, s = cs["lsq-qat"][0], cs["sf"][0]
        qs, ss = q.get("tuning_seconds") or 0, s.get("tuning_seconds") or 0
        verdicts.append(s["f1"] >= q["f1"] - 1.0 and ss < qs)
        facts.append(f"{model}: SF {s['f1']:.2f} in {ss:.0f} s, QAT {q['f1']:.2f} in {qs:.0f} s")
    if not verdicts:
        return "not measured", rows
    v = "reproduced" if all(verdicts) else "not reproduced" if not any(verdicts) else "mixed"
    return (f"{v} (SF within 1 F1 of LSQ+ QAT in less time in {sum(verdicts)} of {len(verdicts)} models: "
            f"{'; '.join(facts)})"), rows


def table4(cells: List[dict]) -> List[str]:
    """Per-scenario TP/FP/FN of Selective Focus at W8A4 (seed 0), the paper's Table 4."""
    from selfocus_ext.data.synth import SCENARIOS

    g = group(cells, "t1")
    lines = ["| model | " + " | ".join(SCENARIOS) + " | total | F1 |", "|---|" + "---|" * (len(SCENARIOS) + 2)]
    for model in ZOO:
        cs = [c for c in g.get((model, "w8a4", "sf", ()), []) if c["cell"]["seed"] == 0]
        if not cs or not cs[0].get("counts"):
            continue
        counts = cs[0]["counts"]
        cols = ["/".join(str(v) for v in counts[s]) if s in counts else "-" for s in SCENARIOS + ("total",)]
        lines.append(f"| {model} | " + " | ".join(cols) + f" | {cs[0]['f1']:.2f} |")
    return lines if len(lines) > 2 else []


def table5(cells: List[dict]) -> List[str]:
    """TuSimple frame: accuracy and F1 per model, bit setting and method, the FP model beside."""
    g = group(cells, "t5")
    lines = ["| model | FP acc / F1 | bits | QDrop acc / F1 | SF acc / F1 |", "|---|---|---|---|---|"]
    for model in ZOO:
        for bits in ("w8a4", "w4a4"):
            row = [g.get((model, bits, m, ())) for m in ("qdrop", "sf")]
            if not any(row):
                continue
            first = next(c[0] for c in row if c)
            fp = f"{first.get('fp_accuracy') or float('nan'):.2f} / {first['fp_f1']:.2f}"
            lines.append(f"| {model} | {fp} | {bits.upper()} | " +
                         " | ".join(f"{fmt(c, 'accuracy')} / {fmt(c)}" if c else "-" for c in row) + " |")
    return lines if len(lines) > 2 else []


def seeds_table(cells: List[dict]) -> List[str]:
    """Every Table 1 entry that ran with more than one seed: the single values, the mean and the spread."""
    g = group(cells, "t1")
    lines = ["| model | bits | method | F1 per seed | mean | spread (max - min) |", "|---|---|---|---|---|---|"]
    for (model, bits, method, _), cs in sorted(g.items(), key=zoo_order):
        if len(cs) < 2:
            continue
        per_seed = ", ".join(f"{c['f1']:.2f}" for c in sorted(cs, key=lambda c: c["cell"]["seed"]))
        mean, spread, _ = stats(cs)
        lines.append(f"| {model} | {bits.upper()} | {NAMES[method]} | {per_seed} | {mean:.2f} | {spread:.2f} |")
    return lines if len(lines) > 2 else []


def edges(cells: List[dict]) -> List[str]:
    """W4A4 with the first and last layers at 4 bits too, against Table 1's cells (those layers at 8 bits)."""
    g1, ge = group(cells, "t1"), group(cells, "edges")
    lines = ["| model | method | first/last at 8 bits | first/last at 4 bits | change |", "|---|---|---|---|---|"]
    for model in ZOO:
        for method in ("omse", "sf"):
            at8 = [c for c in g1.get((model, "w4a4", method, ()), []) if c["cell"]["seed"] == 0]
            at4 = ge.get((model, "w4a4", method, ("--first-last-at-bits",)))
            if not at8 or not at4:
                continue
            lines.append(f"| {model} | {NAMES[method]} | {at8[0]['f1']:.2f} | {at4[0]['f1']:.2f} | "
                         f"{at4[0]['f1'] - at8[0]['f1']:+.2f} |")
    return lines if len(lines) > 2 else []


def setting_name(bits: str, extra) -> str:
    return bits.upper() + (" (first/last at 4 bits)" if "--first-last-at-bits" in extra else "")


def stress(cells: List[dict]) -> Tuple[str, List[str], List[str]]:
    """(verdict, probe table, stress table): per Small model the default calibration's F1 at each stress
    setting, the setting chosen (the mildest losing >= STRESS_LOSS F1), and there the calibration, QDrop and SF
    over their seeds with SF against QDrop and the method that recovers most."""
    g = group(cells, "stress")
    probes = ["| model | FP | " + " | ".join(setting_name(b, e) for b, e in STRESS_PROBES) + " | chosen |",
              "|---|---|" + "---|" * len(STRESS_PROBES) + "---|"]
    rows = ["| model | setting | FP | calibration | QDrop | SF | recovered (QDrop / SF) | SF vs QDrop | most |",
            "|---|---|---|---|---|---|---|---|---|"]
    outcomes, best = [], []
    for model in SMALL:
        found = [[c for c in g.get((model, b, "calib", tuple(e)), []) if c["cell"]["seed"] == 0] for b, e in STRESS_PROBES]
        if not any(found):
            continue
        fp = next(cs[0]["fp_f1"] for cs in found if cs)
        chosen = None
        for (bits, extra), cs in zip(STRESS_PROBES, found):
            if not cs:
                break
            if cs[0]["fp_f1"] - cs[0]["f1"] >= STRESS_LOSS:
                chosen = (bits, tuple(extra))
                break
        probes.append(f"| {model} | {fp:.2f} | " + " | ".join(
            f"{cs[0]['f1']:.2f} ({cs[0]['f1'] - cs[0]['fp_f1']:+.2f})" if cs else "-" for cs in found) +
            f" | {setting_name(*chosen) if chosen else '-'} |")
        if chosen is None:
            continue
        entry = {m: g.get((model, chosen[0], m, chosen[1])) for m in STRESS_METHODS}
        if not (entry["qdrop"] and entry["sf"]):
            continue
        cal = stats(entry["calib"])[0] if entry["calib"] else float("nan")

        def recovered(cs):
            return f"{100 * (stats(cs)[0] - cal) / (fp - cal):.0f}%" if fp > cal else "-"

        versus = compare(entry["sf"], entry["qdrop"])
        outcomes.append(versus)
        means = {m: stats(cs)[0] for m, cs in entry.items() if cs}
        top = max(means, key=means.get)
        ties = [m for m in means if m != top and compare(entry[m], entry[top]) == "tie"]
        most = NAMES[top] + (f" (tie with {', '.join(NAMES[m] for m in ties)})" if ties else "")
        best.append(top if not ties else "tie")
        rows.append(f"| {model} | {setting_name(*chosen)} | {fp:.2f} | {fmt(entry['calib'])} | {fmt(entry['qdrop'])} | "
                    f"{fmt(entry['sf'])} | {recovered(entry['qdrop'])} / {recovered(entry['sf'])} | {versus} | {most} |")
    counted = [o for o in outcomes if o in ("win", "loss", "tie")]
    if not counted:
        verdict = "not measured yet" if len(rows) == 2 else "undecided (single seeds only)"
    else:
        verdict = (f"SF against QDrop where calibration alone loses >= {STRESS_LOSS:g} F1: {tally(counted, 'model', 'models')}; most "
                   f"recovered by: " + ", ".join(f"{NAMES.get(m, m)} {best.count(m)}" for m in sorted(set(best))) + ".")
    return verdict, (probes if len(probes) > 2 else []), (rows if len(rows) > 2 else [])


def cost_table(cells: List[dict]) -> List[str]:
    """Each tuning method's iteration count and tuning seconds per model (seed 0), beside Table 1."""
    g = group(cells, "t1")
    lines = ["| model | method | iterations | tuning s W8A8 | W8A4 | W4A4 | machine |", "|---|---|---|---|---|---|---|"]
    for model in ZOO:
        for method in TUNING:
            runs = {b: [c for c in g.get((model, b, method, ()), []) if c["cell"]["seed"] == 0]
                    for b in ("w8a8", "w8a4", "w4a4")}
            done = [cs[0] for cs in runs.values() if cs]
            if not done:
                continue
            secs = [f"{runs[b][0]['tuning_seconds']:.0f}" if runs[b] and runs[b][0].get("tuning_seconds") else "-"
                    for b in runs]
            iters = next((c["iterations"] for c in done if c.get("iterations")), "-")
            lines.append(f"| {model} | {NAMES[method]} | {iters} | " + " | ".join(secs) +
                         f" | {' + '.join(sorted({where(c) for c in done}))}, "
                         f"{'idle' if all(idle(c) for c in done) else 'loaded'} |")
    return lines if len(lines) > 2 else []


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


def tally(outcomes: List[str], unit: str, units: str) -> str:
    """'2 wins, 1 tie, 0 losses over 3 models' from a list of 'win' / 'tie' / 'loss'."""
    def n(k: int, word: str, many: str) -> str:
        return f"{k} {word if k == 1 else many}"
    return (f"{n(outcomes.count('win'), 'win', 'wins')}, {n(outcomes.count('tie'), 'tie', 'ties')}, "
            f"{n(outcomes.count('loss'), 'loss', 'losses')} over {n(len(outcomes), unit, units)}")


def provenance(cells: List[dict]) -> str:
    """Where and when ``cells`` ran, and how many had the machine to themselves (their times count)."""
    machines = sorted({f"{where(c)} ({c['machine']})" for c in cells})
    dates = sorted({c["date"] for c in cells if c.get("date")})
    return (f"These {len(cells)} cells: {'; '.join(machines)}; dates {', '.join(dates) or 'not recorded'}; "
            f"{sum(idle(c) for c in cells)} of {len(cells)} had the machine (load average under cores + 0.5 at start and end).")


def equal_time(f: float, cells: List[dict]) -> Tuple[str, List[str]]:
    """SF at the fraction whose tuning time matches QDrop's at ``f`` (paper_experiments.equal_fraction, from
    the seed-0 cells) against QDrop at ``f``: each Small model at W4A4 and at its stress setting. Where SF
    there still took more than MORE_TIME x QDrop's time, the verdict is against QDrop rerun at SF's time."""
    others = other_budgets(f)
    rows = [f"| model | setting | QDrop at f = {f:g} | SF at f = {f:g} | equal-time f | SF there | time SF / QDrop "
            "| QDrop at SF's time | SF vs QDrop |", "|---|---|---|---|---|---|---|---|---|"]
    outcomes, ran, longer, matched = [], [], [], 0

    def seed0(cs):
        return next((c for c in cs or [] if c["cell"]["seed"] == 0), None)

    for table in ("t1", "stress"):
        g = group(cells, table)
        for (model, bits, method, extra), qd in sorted(g.items(), key=zoo_order):
            if method != "qdrop" or model not in SMALL or (table == "t1" and bits != "w4a4"):
                continue
            sf = g.get((model, bits, "sf", extra))
            frac = equal_fraction(seed0(qd), seed0(sf), f)
            eq = group(others.get(frac, []), table).get((model, bits, "sf", extra)) if frac else None
            if not eq:
                continue
            t_sf, t_qd = median_seconds(eq), median_seconds(qd)
            ratio = t_sf / t_qd if t_sf and t_qd else None
            q = matched_qdrop_fraction(qd, eq, f)
            mq = group(others.get(q, []), table).get((model, bits, "qdrop", extra)) if q else None
            versus = compare(eq, mq or qd)
            outcomes.append(versus)
            ran += eq + (mq or [])
            matched += bool(mq)
            # QDrop's time does not scale exactly with iterations either: its rerun can still be shorter than SF's
            t_ref = median_seconds(mq) if mq else t_qd
            r_ref = t_sf / t_ref if t_sf and t_ref else None
            if versus == "win" and r_ref is not None and r_ref > MORE_TIME:
                longer.append(f"{model} {setting_name(bits, extra)} {r_ref:.2f}x" + (" (its rerun)" if mq else ""))
            rows.append(f"| {model} | {setting_name(bits, extra)} | {fmt(qd)} ({seconds(qd)}) | {fmt(sf)} ({seconds(sf)}) "
                        f"| {frac:g} | {fmt(eq)} ({seconds(eq)}) | {f'{ratio:.2f}x' if ratio else '-'} "
                        f"| {f'{fmt(mq)} ({seconds(mq)}, f = {q:g}; SF {r_ref:.2f}x)' if mq and r_ref else '-'} "
                        f"| {versus} |")
    counted = [o for o in outcomes if o in ("win", "tie", "loss")]
    if not counted:
        return ("not measured yet" if not outcomes else "undecided (single seeds only)"), (rows if outcomes else [])
    notes = []
    if matched:
        notes.append(f"against QDrop rerun at SF's time in {matched} of them")
    limit = f"more than {MORE_TIME:g}x the compared QDrop run's median time"
    notes.append(f"wins with {limit}: {', '.join(longer)}" if longer else f"no win had {limit}")  # bought with time?
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
    v5, rows5 = speed_ratio(cells)
    v6, probes6, rows6 = stress(cells)
    v7, rows7 = equal_time(f, cells)
    lines = ["# Results: the paper's experiments on the zoo", "",
             f"Produced by `python python/paper_experiments.py --run --f {f:g}` then `--report`, from the shipped models. "
             f"Budget: every tuning method gets f = {f:g} of its own paper iterations (docs/recon.md). Test set: the "
             "fixed generated CULane-frame set (2000 scenes), F1 at IoU 0.5; several seeds where given as "
             "mean ±half-range (n). Two methods tie when their means differ by no more than the larger of their seeds' "
             "full ranges (twice the ± shown); one-seed comparisons are marked higher / lower, never counted. A seed "
             "draws the 512 calibration images and the tuning's randomness; every method of one seed sees the same "
             "calibration images.", "",
             f"Machines: {'; '.join(machines)}. Dates: {', '.join(dates)}. Cells per machine: {'; '.join(ran)}.", ""]
    n_stale = sum(stale(c) for c in cells)
    if n_stale:
        lines += [f"{STALE_MARK.strip()}: an entry with network-wise cells (SF and its ablations) from before the hard "
                  f"forward (docs/recon.md, \"Diagnosis\"): {n_stale} of the {sum(c['cell']['method'] in ABLATION for c in cells)} "
                  "network-wise cells; `python python/paper_experiments.py --run --rerun-stale` runs them again. "
                  "Verdicts count them as they are.", ""]
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
    lines += ["## Tuning cost (seed 0)", ""] + (cost_table(cells) or ["not measured yet"]) + [""]
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
              "loss won back; SF vs QDrop and the best method follow the tie rule above.", ""]
    lines += (probes6 or ["not measured yet"]) + [""] + (rows6 or ["no chosen setting measured yet"]) + [""]
    lines += ["## SF vs QDrop at equal time", "",
              f"SF rerun (seeds 0-2) at the fraction of its paper iterations whose tuning time matches QDrop's at f = "
              f"{f:g} on the same entry (f x QDrop's / SF's tuning seconds of the idle seed-0 cells, two significant "
              "digits; `python python/paper_experiments.py --run --equal-time`), against QDrop at f = "
              f"{f:g}: F1 and median tuning time. Where SF there still took more than {MORE_TIME:g}x QDrop's median time "
              "(the fraction comes from one seed-0 ratio, and time does not scale exactly with iterations), QDrop "
              "runs again at the fraction matching SF's time, and the last column (tie rule above) compares SF "
              "with that run.", ""]
    lines += (rows7 or ["not measured yet"]) + [""]
    lines += ["## Speed at equal f", "", "| model | bits | SF | QDrop | ratio | machine |", "|---|---|---|---|---|---|"] + rows5 + [""]
    budgets = budget_table(f, cells)
    if budgets:
        lines += ["## Other budgets", "",
                  f"Table 1 entries rerun at another fraction of each method's paper iterations, beside the same entry "
                  f"and QDrop's at f = {f:g} (F1, iterations, median tuning time): whether a gap closes with more "
                  "iterations, and how the method compares with QDrop when their tuning times are about equal. The last "
                  "column follows the tie rule above.", ""] + budgets + [""]
    change = engine_change(f, cells)
    if change:
        lines += ["## Network-wise tuning with the hard forward", "",
                  "Entries run again after the network-wise methods moved to the hard rounding in the forward pass "
                  "(docs/recon.md, \"Diagnosis\"), beside their earlier results (soft rounding, archived under "
                  f"benchmarks/results/paper/f{f:g}-engine1/), their start (the default calibration of the same "
                  "seeds) and QDrop from that start. Comparisons follow the tie rule above; the last column is each "
                  "seed's held-out check (Lane Distortion Score against the FP lanes on 128 held-out calibration-like "
                  "images, start -> tuned).", ""] + change + [""]
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
