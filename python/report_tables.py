"""The tables and verdicts of docs/results.md, each a function of the finished cells (no files read here:
results_report.py loads the cells and writes the page)."""
from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from grid_plan import ABLATION, ABLATION_MODELS, ALL_METHODS, SMALL, STRESS_LOSS, STRESS_METHODS, STRESS_PROBES, TUNING, ZOO, alternated_ratios, had_the_machine, median_seconds, method_time
from grid_plan import is_stale as stale
from selfocus_ext.data.synth import SCENARIOS
from selfocus_ext.recon.config import default_top_k
from selfocus_ext.workflow.bootstrap import false_decision_rate, image_noise_of_mean, paired_verdict, seed_residuals


NAMES = {"aciq": "ACIQ", "omse": "OMSE", "adaround": "AdaRound", "brecq": "BRECQ", "qdrop": "QDrop",
         "pdquant": "PD-Quant", "sf": "SF", "sf-nofocus": "w/o Focus", "sf-noselect": "w/o Selection", "network": "w/o both",
         "lsq-qat": "LSQ+ QAT", "calib": "calibration"}


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


def mark(cs: List[dict]) -> str:
    """STALE_MARK where any of ``cs`` ran on an earlier engine."""
    return STALE_MARK if any(stale(c) for c in cs) else ""


def fmt(cs: Optional[List[dict]], key: str = "f1", mark_stale: bool = True) -> str:
    if not cs:
        return "-"
    mean, spread, n = stats(cs, key)
    return (f"{mean:.2f}" if n == 1 else f"{mean:.2f} ±{spread / 2:.2f} ({n})") + (mark(cs) if mark_stale else "")


# Standard deviation (F1) of one paired difference over the 2000 test scenes where a cell carries no
# per-image rows (cells from before they were stored): the tune reports' paired bootstrap gives about
# +-0.4 F1 at 95 % between two quantized models of one entry.
TYPICAL_IMAGE_SD = 0.2


def by_seed(cs: List[dict]) -> Dict[int, dict]:
    return {c["cell"]["seed"]: c for c in cs}


def paired(a: List[dict], b: List[dict]) -> Dict[str, object]:
    """The comparison rule: per seed both methods saw the same calibration images, so the difference
    ``F1(a) - F1(b)`` is taken per shared seed; the test images they share add one common error, bootstrapped
    from the cells' per-image rows (the tune report's paired bootstrap) or ``TYPICAL_IMAGE_SD`` where a cell
    has none. ``paired_verdict`` combines both into one 95 % interval."""
    sa, sb = by_seed(a), by_seed(b)
    shared = sorted(set(sa) & set(sb))
    diffs = [sa[s]["f1"] - sb[s]["f1"] for s in shared]
    rows = [(sb[s].get("image_counts"), sa[s].get("image_counts")) for s in shared]
    measured = bool(rows) and all(x and y and len(x) == len(y) for x, y in rows) and len({len(x) for x, _ in rows}) == 1
    if measured:
        metric = "tusimple" if sa[shared[0]]["cell"].get("data") == "tusimple" else "culane"
        image_sd = image_noise_of_mean(rows, metric, resamples=1000)
    else:
        image_sd = TYPICAL_IMAGE_SD
    return {**paired_verdict(diffs, image_sd), "image_sd": image_sd, "image_sd_measured": measured}


def compare(a: List[dict], b: List[dict]) -> str:
    """'win' / 'loss' (a against b) where the paired 95 % interval excludes zero, else 'undecided'; with fewer
    than two shared seeds there is no interval: 'higher' / 'lower' (indicative, not counted as a result)."""
    result = paired(a, b)
    if result["seeds"] < 2:
        ma, mb = stats(a)[0], stats(b)[0]
        return "higher" if ma > mb else "lower" if ma < mb else "equal"
    return result["verdict"]


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
    n = tally["win"] + tally["undecided"] + tally["loss"]
    single = tally["higher"] + tally["lower"]
    tail = (f"; {single} more with one seed, not counted: SF higher in {tally['higher']}, lower in "
            f"{tally['lower']}" if single else "")
    if partial:
        tail += (f"; {sum(partial.values())} more against one rival only, not counted: SF "
                 + ", ".join(f"{k} in {v}" for k, v in sorted(partial.items())))
    if not n:
        return (f"not decided (no cell with several seeds yet{tail})" if single else "not measured"), rows
    verdict = ("undecided" if not tally["win"] and not tally["loss"] else
               "reproduced" if tally["win"] > n / 2 and not tally["loss"] else
               "not reproduced" if tally["win"] <= tally["loss"] else
               "partly reproduced" if not tally["loss"] else "mixed")
    return (f"{verdict} (SF wins {tally['win']}, loses {tally['loss']}, undecided {tally['undecided']} of {n} "
            f"cells{tail})"), rows


def speed_ratio(records: List[dict], budget: str = "") -> Tuple[str, List[str]]:
    """QDrop's time over Selective Focus's at the same fraction of their paper iterations, from same-day runs
    alternated SF / QDrop in one process (each time everything the method needs beyond calibration)."""
    rows = []
    medians = []
    for e in alternated_ratios(records, "qdrop", budget):
        med = statistics.median(e["ratios"])
        medians.append(med)
        rows.append(f"| {e['model']} | {e['bits'].upper()} | {e['budget']} | "
                    f"{', '.join(f'{t:.0f}' for t in e['sf'])} | {', '.join(f'{t:.0f}' for t in e['other'])} | "
                    f"{', '.join(f'{r:.2f}' for r in e['ratios'])} | {med:.2f}x ({min(e['ratios']):.2f}-"
                    f"{max(e['ratios']):.2f}) | {e['date']}, {e['machine']} |")
    if not medians:
        return "not measured (no alternated runs: python benchmarks/alternated_time.py)", rows
    med = statistics.median(medians)
    verdict = "reproduced" if med >= 4 else "mixed" if med >= 2 else "not reproduced"
    return (f"{verdict} (QDrop / SF time at equal f, same-day alternated runs: median {med:.1f}x over "
            f"{len(medians)} entries, per-entry medians {min(medians):.1f}-{max(medians):.1f}x)"), rows


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
    """One verdict from per-model outcomes of compare(): reproduced when the claim wins in every model, not
    reproduced when it loses somewhere and wins nowhere, undecided when nothing is decided, partly reproduced
    when it wins somewhere and is undecided elsewhere; single-seed outcomes decide nothing."""
    if any(o in ("higher", "lower") for o in outcomes):
        guess = ("reproduced" if all(o == "higher" for o in outcomes) else
                 "not reproduced" if "higher" not in outcomes else "mixed")
        return f"not decided (would read {guess}; one seed per entry: indicative only) ({detail})"
    wins, losses = outcomes.count("win"), outcomes.count("loss")
    v = ("reproduced" if wins == len(outcomes) else "undecided" if not wins and not losses else
         "not reproduced" if not wins else "partly reproduced" if not losses else "mixed")
    return (f"{v} (win {wins}, loss {losses}, undecided {outcomes.count('undecided')} of {len(outcomes)} by the "
            f"paired rule; {detail})")


def topk(cells: List[dict]) -> Tuple[str, List[str]]:
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
        rows.append(f"| {model} | " + " | ".join(f"{stats(v)[0]:.2f}{mark(v)} ({method_time(v[0]) or 0:.0f} s)"
                                              for v in cs.values()) + " |")
        q, s = cs["lsq-qat"][0], cs["sf"][0]
        qs, ss = method_time(q) or 0, method_time(s) or 0
        verdicts.append(s["f1"] >= q["f1"] - 1.0 and ss < qs)
        facts.append(f"{model}: SF {s['f1']:.2f} in {ss:.0f} s, QAT {q['f1']:.2f} in {qs:.0f} s")
    if not verdicts:
        return "not measured", rows
    v = "reproduced" if all(verdicts) else "not reproduced" if not any(verdicts) else "mixed"
    return (f"{v} (SF within 1 F1 of LSQ+ QAT in less time in {sum(verdicts)} of {len(verdicts)} models: "
            f"{'; '.join(facts)})"), rows


def table4(cells: List[dict]) -> List[str]:
    """Per-scenario TP/FP/FN of Selective Focus at W8A4 (seed 0), the paper's Table 4."""
    g = group(cells, "t1")
    lines = ["| model | " + " | ".join(SCENARIOS) + " | total | F1 |", "|---|" + "---|" * (len(SCENARIOS) + 2)]
    for model in ZOO:
        cs = [c for c in g.get((model, "w8a4", "sf", ()), []) if c["cell"]["seed"] == 0]
        if not cs or not cs[0].get("counts"):
            continue
        counts = cs[0]["counts"]
        cols = ["/".join(str(v) for v in counts[s]) if s in counts else "-" for s in SCENARIOS + ("total",)]
        lines.append(f"| {model} | " + " | ".join(cols) + f" | {cs[0]['f1']:.2f}{mark(cs[:1])} |")
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
            lines.append(f"| {model} | {NAMES[method]} | {at8[0]['f1']:.2f}{mark(at8[:1])} | "
                         f"{at4[0]['f1']:.2f}{mark(at4[:1])} | {at4[0]['f1'] - at8[0]['f1']:+.2f} |")
    return lines if len(lines) > 2 else []


def setting_name(bits: str, extra) -> str:
    return bits.upper() + (" (first/last at 4 bits)" if "--first-last-at-bits" in extra else "")


def stress(cells: List[dict]) -> Tuple[str, List[str], List[str]]:
    """(verdict, probe table, stress table): per Small model the default calibration's F1 at each stress
    setting, the setting chosen (the mildest losing >= STRESS_LOSS F1), and there the calibration, QDrop, SF
    and PD-Quant over their seeds with SF against QDrop and the method that recovers most."""
    g = group(cells, "stress")
    probes = ["| model | FP | " + " | ".join(setting_name(b, e) for b, e in STRESS_PROBES) + " | chosen |",
              "|---|---|" + "---|" * len(STRESS_PROBES) + "---|"]
    rows = ["| model | setting | FP | calibration | QDrop | PD-Quant | SF | recovered (QDrop / PD-Quant / SF) | SF vs QDrop | "
            "most |",
            "|---|---|---|---|---|---|---|---|---|---|"]
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
        ties = [m for m in means if m != top and compare(entry[top], entry[m]) != "win"]
        most = NAMES[top] + (f" (undecided against {', '.join(NAMES[m] for m in ties)})" if ties else "")
        best.append(top if not ties else "undecided")
        rows.append(f"| {model} | {setting_name(*chosen)} | {fp:.2f} | {fmt(entry['calib'])} | {fmt(entry['qdrop'])} | "
                    f"{fmt(entry['pdquant'])} | {fmt(entry['sf'])} | {recovered(entry['qdrop'])} / "
                    f"{recovered(entry['pdquant']) if entry['pdquant'] else '-'} / {recovered(entry['sf'])} | {versus} | "
                    f"{most} |")
    counted = [o for o in outcomes if o in ("win", "loss", "undecided")]
    if not counted:
        verdict = "not measured yet" if len(rows) == 2 else "undecided (single seeds only)"
    else:
        verdict = (f"SF against QDrop where calibration alone loses >= {STRESS_LOSS:g} F1: {tally(counted, 'model', 'models')}; most "
                   f"recovered by: " + ", ".join(f"{NAMES.get(m, m)} {best.count(m)}" for m in sorted(set(best))) + ".")
    return verdict, (probes if len(probes) > 2 else []), (rows if len(rows) > 2 else [])


def cost_table(cells: List[dict]) -> List[str]:
    """Each tuning method's iteration count and tuning seconds per model (seed 0), beside Table 1."""
    g = group(cells, "t1")
    lines = ["| model | method | iterations | s W8A8 | W8A4 | W4A4 | machine |", "|---|---|---|---|---|---|---|"]
    for model in ZOO:
        for method in TUNING:
            runs = {b: [c for c in g.get((model, b, method, ()), []) if c["cell"]["seed"] == 0]
                    for b in ("w8a8", "w8a4", "w4a4")}
            done = [cs[0] for cs in runs.values() if cs]
            if not done:
                continue
            secs = [f"{method_time(runs[b][0]):.0f}" if runs[b] and method_time(runs[b][0]) else "-"
                    for b in runs]
            iters = next((c["iterations"] for c in done if c.get("iterations")), "-")
            lines.append(f"| {model} | {NAMES[method]} | {iters} | " + " | ".join(secs) +
                         f" | {' + '.join(sorted({where(c) for c in done}))}, "
                         f"{'idle' if all(idle(c) for c in done) else 'loaded'} |")
    return lines if len(lines) > 2 else []


def tally(outcomes: List[str], unit: str, units: str) -> str:
    """'2 wins, 0 losses, 1 undecided over 3 models' from a list of 'win' / 'undecided' / 'loss'."""
    def n(k: int, word: str, many: str) -> str:
        return f"{k} {word if k == 1 else many}"
    return (f"{n(outcomes.count('win'), 'win', 'wins')}, {n(outcomes.count('loss'), 'loss', 'losses')}, "
            f"{outcomes.count('undecided')} undecided over {n(len(outcomes), unit, units)}")


def provenance(cells: List[dict]) -> str:
    """Where and when ``cells`` ran, and how many had the machine to themselves (their times count)."""
    machines = sorted({f"{where(c)} ({c['machine']})" for c in cells})
    dates = sorted({c["date"] for c in cells if c.get("date")})
    return (f"These {len(cells)} cells: {'; '.join(machines)}; dates {', '.join(dates) or 'not recorded'}; "
            f"{sum(idle(c) for c in cells)} of {len(cells)} had the machine (load average under cores + 0.5 at start and end).")


def rule_statement(cells: List[dict], seeds: int = 3) -> str:
    """The comparison rule as the page states it, with its false-decision rate: the rule applied to
    simulated comparisons of two equal methods, whose per-seed noise is resampled from the seed-to-seed
    residuals of every measured pair of tuning methods on one entry (two or more shared seeds)."""
    entries = []
    for table in ("t1", "stress", "t2"):
        g = group(cells, table)
        keys = sorted({(m, b, e) for m, b, _, e in g})
        for model, bits, extra in keys:
            methods = sorted(k[2] for k in g if k[:2] == (model, bits) and k[3] == extra and k[2] in NAMES
                             and k[2] not in ("aciq", "omse", "calib"))
            for i, a in enumerate(methods):
                for b in methods[i + 1:]:
                    sa, sb = by_seed(g[(model, bits, a, extra)]), by_seed(g[(model, bits, b, extra)])
                    shared = sorted(set(sa) & set(sb))
                    if len(shared) >= 2:
                        entries.append([sa[s]["f1"] - sb[s]["f1"] for s in shared])
    text = ("Comparison rule (paired): every method of one seed sees the same calibration images and all are scored "
            "on the same test scenes, so two methods are compared per seed, F1(A) - F1(B), over the seeds both ran. "
            "The 95 % interval of the mean difference combines Student's t over the seeds (the paired t-test) with "
            "the test set's noise, which the seeds share: a paired bootstrap over the test images of the cells' "
            "per-image counts (1000 resamples), or, for cells that carry none, a standard deviation of "
            f"{TYPICAL_IMAGE_SD:g} F1 (the tune reports' paired bootstrap on the 2000 scenes, about +-0.4 F1 at 95 %). "
            "A win or a loss only where the interval excludes zero, else undecided; with one shared seed a "
            "comparison reads higher / lower and is never counted. ")
    if not entries:
        return text + "Its false-decision rate is not measured yet (no pair of methods with two shared seeds)."
    residuals = seed_residuals(entries)
    rate = false_decision_rate(residuals, seeds, TYPICAL_IMAGE_SD, trials=4000)
    return text + (f"False-decision rate, measured by simulation: two equal methods compared over {seeds} seeds, each "
                   f"seed's difference drawn from the {len(residuals)} seed-to-seed residuals of the {len(entries)} "
                   f"measured pairs (two or more shared seeds) plus one shared test-set error, are declared different "
                   f"in {100 * rate:.1f} % of 4000 trials (the nominal rate is 5 %).")
