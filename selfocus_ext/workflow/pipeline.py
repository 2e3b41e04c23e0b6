"""The tune run, stage after stage (calibrate, curves, tune, held-out keep, evaluate, export, report)."""
from __future__ import annotations

from . import outputs, stages
from .job import TuneJob

INTERRUPTED = 130


def execute(job: TuneJob) -> int:
    """Runs every stage the record does not hold yet; 0 when the run is complete, 130 when tuning was
    interrupted (what finished is saved)."""
    s, run = job.settings, job.run
    job.say(f"{s.model} {s.bits.upper()} {job.method.name} ({job.budget.name} budget) on {s.data} -> {run.out}")
    job.open_test_set()
    fp_xs = stages.evaluate_fp(job)
    qmodel = stages.calibrate(job, fp_xs)
    curves = stages.noise_score_curves(job)
    if job.tunes and not run.has("tuned"):
        if stages.tune(job, qmodel, curves, fp_xs) is None:
            return INTERRUPTED
    if job.tunes and not run.has("kept"):
        stages.keep_better(job)
    final = stages.returned_model(job, qmodel)
    if job.export_format:
        outputs.export_stage(job, final, fp_xs)
    outputs.figures(job, fp_xs, curves)
    table = outputs.report(job)
    warning = (run.progress.get("kept") or {}).get("warning")
    if warning:
        job.say(f"warning: {warning}")
    print(table)
    return 0
