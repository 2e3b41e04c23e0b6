"""The run's summary: report.json, report.md and the table printed at the end."""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import Dict

from ..data import synth
from ..models.registry import published_names
from ..files import atomic_write_json


def build_report(settings: Dict, progress: Dict, method, budget) -> Dict:
    rows = []
    stages = [("fp", "FP"), ("calibrated", "calibration only"), ("tuned", f"tuned ({method.name})")]
    stages += [("deployable", "int32 biases (PyTorch)")]
    stages += [(k, f"onnxruntime ({k[5:]})") for k in sorted(progress) if k.startswith("onnx-")]
    for key, label in stages:
        if key in progress:
            r = progress[key]
            rows.append({"stage": label, "f1": r["f1"], "lds": r.get("lds"), "per_scenario": r.get("per_scenario", {}),
                         "extra": {k: r[k] for k in ("accuracy", "fp", "fn", "precision", "recall", "cross_fp")
                                   if r.get(k) is not None}})
    return {"settings": settings, "method": asdict(method), "budget": asdict(budget), "results": rows,
            "seconds": progress.get("seconds", {}), "peak_mb": progress.get("peak_mb", {}),
            "selection": progress.get("selection", []),
            "unit_seconds": progress.get("unit_seconds", {}), "iterations": progress.get("iterations"),
            "kept": progress.get("kept"), "differences": progress.get("differences", [])}


STAGE_NAMES = {"fp": "FP", "calibrated": "calibration only", "tuned": "tuned", "deployable": "int32 biases"}


def _stage(key: str) -> str:
    return STAGE_NAMES.get(key, key.replace("onnx-", "onnxruntime "))


def format_table(report: Dict) -> str:
    s = report["settings"]
    edges = "" if s.get("first_last_8bit", True) else "; first layer and heads also at these bits"
    data = s["data"] + (" (generated scenes: F1 on the project's synthetic roads, not on real images)"
                        if s["data"] == "synth" and s["model"] in published_names() else "")
    lines = [f"{s['model']} {s['bits'].upper()} {s['method']} ({s['budget']} budget), data {data}, "
             f"{s['calib']} calibration images{edges}", ""]
    lines.append(f"{'stage':<22} {'F1':>7} {'LDS vs FP':>10}")
    for r in report["results"]:
        lds = "-" if r["lds"] is None else f"{r['lds']:.3f}"
        lines.append(f"{r['stage']:<22} {r['f1']:>7.2f} {lds:>10}")
    scen = [k for k in synth.SCENARIOS if any(k in r["per_scenario"] for r in report["results"])]
    scen += sorted({k for r in report["results"] for k in r["per_scenario"]} - set(scen))
    if scen:
        lines += ["", "F1 per scenario (cross: false positives)"]
        lines.append(f"{'stage':<22} " + " ".join(f"{k[:7]:>7}" for k in scen))
        for r in report["results"]:
            cells = []
            for k in scen:
                v = r["per_scenario"].get(k)
                cells.append(f"{r['extra'].get('cross_fp', '-'):>7}" if k == "cross" else
                             (f"{v:>7.2f}" if v is not None else f"{'-':>7}"))
            lines.append(f"{r['stage']:<22} " + " ".join(cells))
    if report.get("differences"):
        from .bootstrap import describe

        lines += ["", "F1 differences, with what the test set can resolve (paired bootstrap over its images)"]
        for d in report["differences"]:
            lines.append(f"  {_stage(d['b']) + ' - ' + _stage(d['a']):<34} {describe(d)}")
    kept = report.get("kept")
    if kept:
        st, tu = kept["start"], kept["tuned"]
        lines += ["", f"held-out check ({kept['images']} calibration-like images kept out of tuning, no labels; "
                      "against the FP model)",
                  f"  {'':<18} {'LDS vs FP':>10}  head output error (RMS, relative to the FP output)"]
        for name, sc in (("start (calibrated)", st), ("tuned", tu)):
            lines.append(f"  {name:<18} {sc['lds']:>10.3f}  " +
                         ", ".join(f"{h} {e:.4f}" for h, e in sc["head_error"].items()))
        lines.append(f"  kept: {'the tuned model' if kept['kept'] == 'tuned' else 'the start (calibration only)'}"
                     f" -- {kept['reason']}")
        if kept.get("warning"):
            lines.append(f"  WARNING: {kept['warning']}")
    if report.get("iterations"):
        b = report["budget"]
        share = f", {b['fraction']:g} of the method's paper budget" if b.get("fraction") else ""
        lines += ["", f"tuning iterations: {report['iterations']} (batch {b['batch_size']}{share})"]
    lines += ["", "time per stage"]
    for k, v in report["seconds"].items():
        lines.append(f"  {k:<30} {v:8.1f} s")
    return "\n".join(lines)


def write_reports(out: str, settings: Dict, progress: Dict, method, budget) -> Dict:
    report = build_report(settings, progress, method, budget)
    atomic_write_json(report, os.path.join(out, "report.json"))
    md = ["# Tuning report", "", "```", format_table(report), "```", ""]
    figures = sorted(f for f in os.listdir(out) if f.endswith(".png"))
    if figures:
        md += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    if report["selection"]:
        md += ["## Selection history", "", "| iteration | " + " | ".join(report["selection"][0]["levels"]) +
               " | selected |", "|---" * (len(report["selection"][0]["levels"]) + 2) + "|"]
        for h in report["selection"]:
            cells = [f"{h['levels'][k]:.4g}" + (f" (LDS {h['predicted'][k]:.2f})" if h.get("predicted") else "")
                     for k in h["levels"]]
            md.append(f"| {h['iteration']}{' (final)' if h.get('final') else ''} | " + " | ".join(cells) +
                      f" | {'+'.join(h['selected']) if not h.get('final') else '-'} |")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return report
