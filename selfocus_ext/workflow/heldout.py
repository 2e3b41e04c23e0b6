"""The label-free check that tuning did not make a model worse than its start.

Tuning fits the calibration images; whether it helped is measured on other images of the same kind
(held-out calibration images), against the FP model, with no labels: the Lane Distortion Score of the
decoded lanes against the FP lanes, and each head's relative output error. ``choose`` keeps the tuned
model unless its distortion is above the start's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Optional

import torch

from .evaluation import lane_distortion


@dataclass
class HeldOutReference:
    """The FP model's head outputs and decoded lanes on the held-out images."""

    images: torch.Tensor
    outputs: Dict[str, torch.Tensor]
    xs: torch.Tensor


@dataclass
class HeldOutScore:
    lds: float  # mean Lane Distortion Score against the FP lanes
    head_error: Dict[str, float]  # per head: RMS of (quantized - FP) over RMS of FP

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


# images per forward: enough for the CPU's kernels to be efficient, few enough that a real-size segmentation
# model's activations stay small (RESA at 800x288 holds about 0.15 GB per image in a forward)
BATCH = 16


def _relative_rms(fp: torch.Tensor, q: torch.Tensor, chunk: int = BATCH) -> float:
    """RMS of (q - fp) over RMS of fp, summed in float64 a chunk of images at a time (no float64 copy of
    the whole output)."""
    err = ref = 0.0
    for i in range(0, len(fp), chunk):
        f = fp[i : i + chunk].to(torch.float64, copy=True)
        d = q[i : i + chunk].to(torch.float64, copy=True)
        d -= f
        err += float(d.pow_(2).sum())
        ref += float(f.pow_(2).sum())
    return (err / ref) ** 0.5 if ref > 0 else float("inf")


@torch.no_grad()
def _run(model, images: torch.Tensor, batch_size: int, device: str):
    model.eval()
    outs = [model(images[i : i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
    outputs = {k: torch.cat([o[k].cpu() for o in outs]) for k in outs[0]}
    return outputs, model.decode(outputs).xs


def reference(fp_model, images: torch.Tensor, batch_size: int = BATCH, device: str = "cpu") -> HeldOutReference:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError("held-out images must be a non-empty [N, 3, H, W] tensor of model inputs")
    try:
        outputs, xs = _run(fp_model.to(device), images, batch_size, device)
    finally:
        fp_model.cpu()
    return HeldOutReference(images, outputs, xs)


def score(qmodel, ref: HeldOutReference, batch_size: int = BATCH, device: str = "cpu") -> HeldOutScore:
    """The quantized model (deployment behaviour: whatever its quantizers hold) on the held-out images."""
    try:
        outputs, xs = _run(qmodel.to(device), ref.images, batch_size, device)
    finally:
        qmodel.cpu()
    ys = torch.from_numpy(qmodel.model_input.frame.ys)
    errors = {h.name: _relative_rms(ref.outputs[h.output_key], outputs[h.output_key]) for h in qmodel.heads}
    return HeldOutScore(lane_distortion(ref.xs, xs, ys), errors)


def choose(start: HeldOutScore, tuned: HeldOutScore, keep_tuned: bool = False) -> Dict[str, Optional[str]]:
    """Which model to keep: the tuned one unless its held-out distortion is above the start's (a tie keeps
    the tuned one); ``keep_tuned`` keeps it regardless. Returns ``kept`` ("tuned" or "start"), ``reason`` and
    ``warning`` (None unless the tuned model's distortion is above the start's)."""
    worse = tuned.lds > start.lds
    cmp = f"held-out LDS {tuned.lds:.3f} (tuned) against {start.lds:.3f} (start)"
    warning = (f"tuning raised the held-out Lane Distortion Score against the FP lanes: {cmp}" if worse else None)
    if keep_tuned:
        return {"kept": "tuned", "reason": f"--keep-tuned ({cmp})", "warning": warning}
    if worse:
        return {"kept": "start", "reason": f"the tuned model is further from the FP lanes: {cmp}", "warning": warning}
    return {"kept": "tuned", "reason": f"the tuned model is not further from the FP lanes: {cmp}", "warning": None}


__all__ = ["HeldOutReference", "HeldOutScore", "reference", "score", "choose"]
