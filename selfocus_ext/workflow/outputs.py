"""The output stages of a tune run: the ONNX export scored in onnxruntime, the figures, the F1 differences
with their paired-bootstrap intervals, and the report."""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Dict, List

import torch
from torch import nn

from ..export import OnnxLaneModel, export_onnx, freeze, open_session
from . import plots
from .bootstrap import paired_difference
from .evaluation import per_image_distortion
from .job import TuneJob
from .report import format_table, write_reports


def export_stage(job: TuneJob, qmodel: nn.Module, fp_xs: torch.Tensor) -> None:
    """model.onnx, scored in onnxruntime on the test set (--export onnx). Record: "deployable" (the PyTorch
    model with the export's int32 biases: what the runtime should reproduce) and "onnx-FORMAT"."""
    run, fmt = job.run, job.export_format
    key = f"onnx-{fmt}"
    if run.has(key):
        return
    if not run.has("deployable"):
        job.evaluate_into(freeze(qmodel.cpu())[0], "deployable", "deployable model (int32 biases)",
                          reference=fp_xs, device="cpu")
    t = time.perf_counter()
    info = export_onnx(qmodel.cpu(), run.path("model.onnx"), fmt=fmt, force=True,
                       metadata={"model": job.settings.model, "method": job.settings.method})
    run.seconds["onnx export"] = time.perf_counter() - t
    session = open_session(run.path("model.onnx"))
    job.evaluate_into(OnnxLaneModel(session, job.model), key, f"onnxruntime ({fmt})", reference=fp_xs,
                      device="cpu")
    run.progress[key].update(format=fmt, optimization_level=session.optimization_level, bytes=info["bytes"])
    run.save()


def figures(job: TuneJob, fp_xs: torch.Tensor, curves) -> None:
    """curves.png, selection.png and the test images where quantization moved the lanes most."""
    run = job.run
    q_xs = run.load_lanes(run.returned())
    selection = run.progress.get("selection")
    if (curves or selection) and not plots.charts_available():
        job.say(f"curves.png and selection.png skipped: the line charts need matplotlib ({plots.PLOTS_HINT})")
    elif curves or selection:
        if curves:
            plots.save_curves_figure(run.path("curves.png"), curves)
        if selection:
            plots.save_selection_figure(run.path("selection.png"), selection)
    # the four test images where quantization moved the lanes most (and the first image, for reference)
    evalset = job.open_test_set()
    d = per_image_distortion(fp_xs, q_xs, torch.from_numpy(job.model.model_input.frame.ys))
    picks = [0] + [int(i) for i in torch.argsort(d, descending=True)[:3] if int(i) != 0][:3]
    for rank, i in enumerate(picks):
        _, labels = evalset.items(i, i + 1)
        img = plots.lanes_figure(evalset.raw(i), job.model.model_input,
                                 {"ground truth": labels[0]["xs"], "FP": fp_xs[i].numpy(), "quantized": q_xs[i].numpy()})
        plots.save_png(run.path(f"lanes-{rank}-image{i}.png"), img)


def f1_differences(job: TuneJob) -> List[Dict[str, object]]:
    """Each F1 difference of the report with the paired-bootstrap interval of the test set."""
    run, p = job.run, job.run.progress
    pairs = [("calibrated", "fp"), ("tuned", "calibrated"), ("tuned", "fp")]
    pairs += [(k, "deployable") for k in sorted(p) if k.startswith("onnx-")]
    if "deployable" in p:
        pairs.append(("deployable", run.returned()))
    out = []
    for b, a in pairs:
        if a not in p or b not in p:
            continue
        ca, cb = run.load_counts(a), run.load_counts(b)
        if ca is None or cb is None or ca.shape != cb.shape or len(ca) == 0:
            continue
        r = paired_difference(ca.numpy(), cb.numpy(), job.open_test_set().metric)
        out.append({"a": a, "b": b, **r})
    return out


def report(job: TuneJob) -> str:
    """report.md and report.json in the run; returns the table printed at the end."""
    run = job.run
    run.progress["differences"] = f1_differences(job)
    written = write_reports(run.out, asdict(job.settings), run.progress, job.method, job.budget)
    return format_table(written)
