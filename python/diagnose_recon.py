"""Where tuning goes: one model, one start, several tuning variants, measured as they run.

    python python/diagnose_recon.py --model lstr-s --bits w4a4 --seed 0 --f 0.01 \\
        --variants sf sf:v_lr=1e-2 sf:keep_prob=1 qdrop --every 5 --out runs/diag/lstr-s-w4a4

Every variant starts from the same calibrated model (the default calibration of the seed's 512 calibration
images) with the same seed. A variant is a method name with optional ``key=value`` changes: ``v_lr``,
``step_lr``, ``round_weight``, ``round_warmup``, ``beta_start``, ``beta_end`` (recon.config's constants),
``keep_prob`` (QDrop's keep probability), ``top_k``, ``iters``. While a variant runs, every ``--every``
network iterations (and after every block of a block-wise method) it records: the loss terms per head, the
hard-rounded snapshot's and the live (soft) model's Lane Distortion Score against the FP lanes on held-out
calibration images, each head's relative output error, the selected heads, how far the activation steps
moved from their calibrated values, and the share of weights whose rounding differs from round-to-nearest.
F1 on the test set is measured for the start and each variant's final model. Writes ``diagnosis.json``
(resumable per variant) and prints a summary table.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import replace
from typing import Dict, List, Optional

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from selfocus_ext.files import atomic_write_json  # noqa: E402
from selfocus_ext.models import registry  # noqa: E402
from selfocus_ext.quant import calibrate, quantize_model  # noqa: E402
from selfocus_ext.quant.convert import quant_layers  # noqa: E402
from selfocus_ext.recon import Reconstructor, get_budget, get_method, load_or_build_curves  # noqa: E402
from selfocus_ext.recon.engine import OVERRIDABLE  # noqa: E402
from selfocus_ext.recon.state import finish_layers, keep_prob_one  # noqa: E402
from selfocus_ext.ops import adaround_quant, fake_quant  # noqa: E402
from selfocus_ext.workflow import heldout  # noqa: E402
from selfocus_ext.workflow.data import TEST_SEED, calibration_set, evaluation_set, heldout_set, parse_data  # noqa: E402
from selfocus_ext.workflow.evaluation import evaluate  # noqa: E402

VARIANT_KEYS = set(OVERRIDABLE) | {"keep_prob", "top_k", "iters"}


def parse_variant(text: str):
    method, _, rest = text.partition(":")
    get_method(method)
    changes = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in VARIANT_KEYS:
            raise SystemExit(f"--variants {text}: expected METHOD[:key=value,...] with keys {sorted(VARIANT_KEYS)}")
        changes[key] = float(value)
    return method, changes


@torch.no_grad()
def hardened(qmodel):
    """A copy of the model as tuning would leave it now: hard rounding written back, steps frozen."""
    snap = copy.deepcopy(qmodel)
    finish_layers(quant_layers(snap).values())
    return snap


@torch.no_grad()
def rounding_changed(qmodel) -> float:
    """Share of quantized weights whose AdaRound hard rounding differs from round-to-nearest."""
    changed = total = 0
    for layer in quant_layers(qmodel).values():
        wq = layer.weight_quantizer
        if wq.v is None:
            continue
        hard = adaround_quant(layer.weight, wq.v, wq.scale, wq.bits, hard=True)
        rtn = fake_quant(layer.weight, wq.scale, wq.bits, True, 0)
        changed += int((hard != rtn).sum())
        total += hard.numel()
    return changed / total if total else 0.0


def step_drift(qmodel, start_steps: Dict[str, float]) -> Dict[str, float]:
    """Mean and largest |log(step / calibrated step)| over the activation quantizers."""
    drift = []
    for name, layer in quant_layers(qmodel).items():
        s = layer.input_quantizer.step
        if s.numel() and name in start_steps and start_steps[name] > 0:
            drift.append(abs(float(torch.log(s.detach() / start_steps[name]))))
    return {"mean": sum(drift) / len(drift), "max": max(drift)} if drift else {"mean": 0.0, "max": 0.0}


class Probe:
    """The monitor: measures the live model every ``every`` iterations and after every unit."""

    def __init__(self, rec, ref, start_steps, every: int, f1_at=(), evalset=None, fp_xs=None):
        self.rec, self.ref, self.start_steps, self.every = rec, ref, start_steps, every
        self.f1_at, self.evalset, self.fp_xs = list(f1_at), evalset, fp_xs
        self.units = 1  # units of a block-wise method (set by the caller)
        self.unit_probes = 10  # a block-wise method is measured after about this many of its units
        self.rows: List[dict] = []
        self.terms: List[dict] = []

    def __call__(self, ev: dict) -> None:
        rec = self.rec
        if ev["event"] == "iteration":
            self.terms.append({"unit": ev["unit_index"], "it": ev["it"], **ev["terms"]})
            if rec.method.granularity != "network" and ev["it"] + 1 == ev["iters"]:
                self._unit_changed = rounding_changed(rec.qmodel)  # the unit's layers, before hardening
            if rec.method.granularity != "network" or (ev["it"] + 1) % self.every:
                return
        elif rec.method.granularity == "network":
            return  # the final model is measured by the caller
        elif (ev["unit_index"] + 1) % max(1, self.units // self.unit_probes) and ev["unit_index"] + 1 < self.units:
            return
        q = rec.qmodel
        row = {"unit": ev["unit"], "unit_index": ev["unit_index"], "it": ev["it"] + (ev["event"] == "iteration")}
        snap = hardened(q)
        hard = heldout.score(snap, self.ref)
        # progress through the whole run (network iterations, or finished units of a block-wise method)
        done = row["it"] / ev["iters"] if rec.method.granularity == "network" else (ev["unit_index"] + 1) / self.units
        if self.f1_at and done >= self.f1_at[0] - 1e-9 and done < 1.0:
            self.f1_at.pop(0)
            r = evaluate(snap, self.evalset, progress=False, reference=self.fp_xs)
            row.update(test_f1=r["f1"], test_lds=r["lds"])
        row.update(hard_lds=hard.lds, hard_head_error=hard.head_error)
        if ev["event"] == "iteration":
            with keep_prob_one(q):
                live = heldout.score(q, self.ref)
            row.update(soft_lds=live.lds, soft_head_error=live.head_error, rounding_changed=rounding_changed(q),
                       selected=rec.history[-1]["selected"] if rec.history else None)
        else:
            row["unit_rounding_changed"] = getattr(self, "_unit_changed", None)
        row["step_drift"] = step_drift(q, self.start_steps)
        self.rows.append(row)
        print(f"  {row['unit']} it {row['it']}: held-out LDS hard {row['hard_lds']:.3f}"
              + (f" (test F1 {row['test_f1']:.2f})" if "test_f1" in row else "")
              + (f" soft {row['soft_lds']:.3f}, rounding changed {100 * row['rounding_changed']:.2f}%"
                 if "soft_lds" in row else f", unit rounding changed {100 * (row['unit_rounding_changed'] or 0):.2f}%") + f", step drift {row['step_drift']['mean']:.4f}", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--bits", default="w4a4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--f", type=float, default=0.01)
    p.add_argument("--variants", nargs="+", default=["sf", "qdrop"])
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--f1-at", type=float, nargs="*", default=[0.5],
                   help="shares of the run at which the hard-rounded snapshot is scored on the test set too")
    p.add_argument("--heldout", type=int, default=128)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--calib", type=int, default=512)
    p.add_argument("--out", required=True)
    p.add_argument("--summary", action="store_true", help="print the table of a finished --out and stop")
    a = p.parse_args(argv)
    if a.summary:
        print(summary(json.load(open(os.path.join(a.out, "diagnosis.json")))))
        return 0
    variants = [(v, *parse_variant(v)) for v in a.variants]
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "diagnosis.json")
    result = json.load(open(path)) if os.path.isfile(path) else {"settings": vars(a), "variants": {}}

    spec = parse_data("synth")
    model = registry.load(a.model)
    images = calibration_set(spec, a.calib, a.seed, model.model_input)
    ref = heldout.reference(model, heldout_set(spec, a.heldout, a.calib, a.seed, model.model_input))
    evalset = evaluation_set(spec, a.test, model.model_input, TEST_SEED)
    fp = evaluate(model, evalset, progress=False)
    start = calibrate(quantize_model(model, a.bits), images)
    # BatchNorm folding: the quantized model with quantization off must compute the FP model
    from selfocus_ext.recon.state import quantization_disabled

    with torch.no_grad(), quantization_disabled(start):
        folded = start(ref.images[:16])
    result["bn_fold_max_error"] = {k: float((folded[k] - ref.outputs[k][:16]).abs().max()) for k in folded}
    if "start" not in result:
        r = evaluate(start, evalset, progress=False, reference=fp["xs"])
        s = heldout.score(start, ref)
        result["start"] = {"f1": r["f1"], "test_lds": r["lds"], "heldout_lds": s.lds, "head_error": s.head_error}
        result["fp_f1"] = fp["f1"]
        atomic_write_json(result, path)
    print(f"{a.model} {a.bits} seed {a.seed}: FP F1 {result['fp_f1']:.2f}, start F1 {result['start']['f1']:.2f}, "
          f"held-out LDS {result['start']['heldout_lds']:.3f}; BN folding max error {result['bn_fold_max_error']}",
          flush=True)
    start_steps = {n: float(l.input_quantizer.step) for n, l in quant_layers(start).items()
                   if l.input_quantizer.step.numel()}
    curves = None
    for label, method_name, changes in variants:
        if label in result["variants"]:
            continue
        method = get_method(method_name)
        if "keep_prob" in changes:
            method = replace(method, keep_prob=changes["keep_prob"])
        budget = get_budget(f"f{a.f:g}")
        if "iters" in changes:
            it = int(changes["iters"])
            budget = replace(budget, network_iters=it, block_iters=it, layer_iters=it,
                             refresh=max(1, round(it * budget.refresh / budget.network_iters)))
        if method.select and curves is None:
            curves, _, _ = load_or_build_curves(model, images[:budget.curve_images], os.path.expanduser(
                "~/.cache/selfocus_ext"), budget.curve_levels, budget.curve_reruns, a.seed, False, a.model)
        q = copy.deepcopy(start)
        overrides = {k: v for k, v in changes.items() if k in OVERRIDABLE}
        rec = Reconstructor(q, method, budget, images, seed=a.seed, curves=curves if method.select else None,
                            top_k=int(changes["top_k"]) if "top_k" in changes else None, progress=False,
                            overrides=overrides)
        probe = Probe(rec, ref, start_steps, a.every, sorted(a.f1_at), evalset, fp["xs"])
        if method.granularity != "network":
            from selfocus_ext.recon.units import find_units

            probe.units = len(find_units(copy.deepcopy(start), images[:1], method.granularity))
        rec.monitor = probe
        print(f"{label}: {budget.iters(method.granularity)} iterations per {method.granularity}", flush=True)
        t = time.perf_counter()
        rec.run()
        secs = time.perf_counter() - t
        r = evaluate(q, evalset, progress=False, reference=fp["xs"])
        s = heldout.score(q, ref)
        result["variants"][label] = {"method": method_name, "changes": changes, "seconds": secs, "f1": r["f1"],
                                     "test_lds": r["lds"], "heldout_lds": s.lds, "head_error": s.head_error,
                                     "selection": rec.history, "probe": probe.rows, "terms": probe.terms}
        atomic_write_json(result, path)
        print(f"{label}: F1 {r['f1']:.2f} (start {result['start']['f1']:.2f}), held-out LDS {s.lds:.3f} "
              f"(start {result['start']['heldout_lds']:.3f}), {secs:.0f} s", flush=True)
    print(summary(result))
    return 0


def summary(result: dict) -> str:
    """The variants as a markdown table: test F1 and LDS, held-out LDS, and from the last measurement the share
    of changed roundings and the activation steps' drift (mean |log(step / calibrated step)|)."""
    st = result["start"]
    lines = ["| variant | iterations | F1 | test LDS | held-out LDS | roundings changed | step drift | tuning s |",
             "|---|---|---|---|---|---|---|---|",
             f"| start (calibrated) | - | {st['f1']:.2f} | {st['test_lds']:.2f} | {st['heldout_lds']:.2f} | - | - | - |"]
    for label, v in result["variants"].items():
        rows = v["probe"]
        changed = [r.get("rounding_changed", r.get("unit_rounding_changed")) for r in rows]
        changed = [c for c in changed if c is not None]
        if rows and "unit_rounding_changed" in rows[-1]:
            chg = f"{100 * max(changed):.2f}% (most in a block)" if changed else "-"
        else:
            chg = f"{100 * changed[-1]:.2f}%" if changed else "-"
        drift = f"{rows[-1]['step_drift']['mean']:.4f}" if rows else "-"
        its = sum(1 for t in v["terms"])
        lines.append(f"| {label} | {its} | {v['f1']:.2f} | {v['test_lds']:.2f} | {v['heldout_lds']:.2f} | {chg} | "
                     f"{drift} | {v['seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
