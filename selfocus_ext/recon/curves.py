"""Noise-score curves (Sensitivity Aware Selection's lookup table, paper appendix C).

For every head: Gaussian noise of a given RMS is added to the cached FP output of that head (raw output,
logits included; the other heads keep their FP outputs), the noisy outputs are decoded by the model's
batched decoder, and the Lane Distortion Score against the FP lanes is averaged over images and reruns.
Noise levels are geometric fractions of the head output's own RMS, so one level grid suits heads of any
scale; the curve's x axis is absolute (the head's unit), the same unit as a quantized model's RMS error on
that head, so the current error reads straight off the curve.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from ..files import DamagedFileError, atomic_write_json, read_json
from ..lanes import distortion_score

CURVE_VERSION = 2


@dataclass
class NoiseScoreCurve:
    """Mean Lane Distortion Score per noise level (RMS, the head's unit); (0, 0) is implied."""

    head: str
    levels: List[float]
    scores: List[float]
    output_rms: float

    def __post_init__(self):
        if len(self.levels) != len(self.scores) or not self.levels:
            raise ValueError("NoiseScoreCurve: levels and scores must be non-empty and of equal length")
        if any(b <= a for a, b in zip(self.levels, self.levels[1:])) or self.levels[0] <= 0:
            raise ValueError("NoiseScoreCurve: levels must be positive and strictly increasing")

    def __call__(self, level) -> np.ndarray:
        """Piecewise-linear interpolation through (0, 0) and the samples; constant beyond the last level.
        Monotone wherever the samples are."""
        xs = np.concatenate([[0.0], self.levels])
        ys = np.concatenate([[0.0], self.scores])
        return np.interp(np.asarray(level, np.float64), xs, ys)


def default_levels(count: int) -> np.ndarray:
    """Noise RMS as fractions of the head output's RMS: geometric from 1/128 to 1."""
    return np.geomspace(1.0 / 128.0, 1.0, count)


@torch.no_grad()
def head_outputs(model, images: torch.Tensor, batch_size: int = 64) -> Dict[str, torch.Tensor]:
    outs = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


# Default cap on the noise the curves hold at once (the noise draw and the noisy copies of one head).
CURVES_MEMORY = 2 << 30


def copies_per_chunk(per_copy: int, element_bytes: int, copies: int, memory: int) -> int:
    """How many noisy copies of a head (``per_copy`` values each) are drawn and decoded at once within
    ``memory`` bytes (the draw and the copies: two tensors). Chunks after the first hold a multiple of 16
    values, so drawing them one after another from one generator gives the very values of one whole draw
    (the CPU normal sampler works in blocks of 16; ``chunk_sizes`` keeps the last chunk at 16 or more)."""
    if memory <= 0:
        raise ValueError(f"curves memory: expected a positive number of bytes, got {memory}")
    fit = max(1, memory // max(1, 2 * per_copy * element_bytes))
    step = 16 // math.gcd(per_copy, 16)  # copies per chunk must make a multiple of 16 values
    return min(copies, max(step, fit // step * step))


def chunk_sizes(copies: int, per_chunk: int, per_copy: int) -> List[int]:
    """Copies per chunk: ``per_chunk`` each, the rest last; a last chunk under 16 values joins the one before."""
    sizes = [per_chunk] * (copies // per_chunk) + ([copies % per_chunk] if copies % per_chunk else [])
    if len(sizes) > 1 and sizes[-1] * per_copy < 16:
        sizes[-2:] = [sizes[-2] + sizes[-1]]
    return sizes


@torch.no_grad()
def build_curves(model, images: torch.Tensor, levels: int = 8, reruns: int = 20, seed: int = 0,
                 progress: bool = True, outputs: Optional[Dict[str, torch.Tensor]] = None,
                 memory: int = CURVES_MEMORY) -> Dict[str, NoiseScoreCurve]:
    """One curve per head of ``model`` from ``images`` (or their cached FP ``outputs``). ``memory``: bytes
    of noise held at once; a head whose ``reruns`` noisy copies need more is done in chunks of copies,
    to the same values (the same noise, the same mean up to the order of its sum)."""
    if reruns < 1 or levels < 1:
        raise ValueError(f"build_curves: levels and reruns must be >= 1, got {levels} and {reruns}")
    fp = outputs if outputs is not None else head_outputs(model, images)
    ref = model.decode(fp)
    gen = torch.Generator().manual_seed(seed)
    fractions = default_levels(levels)
    curves = {}
    bar = tqdm(total=len(model.heads) * levels, desc="noise-score curves", unit="level", disable=not progress)
    for spec in model.heads:
        out = fp[spec.output_key]
        rms = float(out.double().pow(2).mean().sqrt())
        if not np.isfinite(rms) or rms == 0.0:
            rms = 1.0
        scores = []
        # One draw of K noise directions per head, scaled to every level (common random numbers: the levels
        # differ only in size, so the curve is not blurred by fresh draws). When the K copies do not fit in
        # ``memory``, the draw is made chunk by chunk and made again for every level from the same generator
        # state, so each level sees the same noise as an unchunked draw would give.
        sizes = chunk_sizes(reruns, copies_per_chunk(out.numel(), out.element_size(), reruns, memory), out.numel())
        chunked, start, noise = len(sizes) > 1, gen.get_state(), None
        for f in fractions:
            if chunked:
                gen.set_state(start)
            total, count = 0.0, 0
            for n in sizes:
                if chunked or noise is None:
                    noise = torch.randn((n,) + tuple(out.shape), generator=gen, dtype=out.dtype)
                    copies = torch.empty_like(noise)
                noisy = dict(fp)
                noisy[spec.output_key] = torch.mul(noise, float(f * rms), out=copies).add_(out.unsqueeze(0))
                d = distortion_score(ref, _decode_copies(model, noisy, spec.output_key, n)).double()
                total, count = total + float(d.sum()), count + d.numel()
            scores.append(total / count)
            bar.update()
        curves[spec.name] = NoiseScoreCurve(spec.name, [float(f * rms) for f in fractions], scores, rms)
    bar.close()
    return curves


def _decode_copies(model, noisy: Dict[str, torch.Tensor], key: str, copies: int) -> torch.Tensor:
    """xs [K, B, L, R] of K noisy copies of one head: one batched call when the decoder takes the Monte-Carlo
    dimension (the zoo's decoders), else one call per copy."""
    if getattr(model, "supports_monte_carlo", True):
        return model.decode(noisy)[0]
    sets = [model.decode({**noisy, key: noisy[key][k]}) for k in range(copies)]
    width = max(s.xs.shape[1] for s in sets)
    return torch.stack([torch.nn.functional.pad(s.xs, (0, 0, 0, width - s.xs.shape[1]), value=float("nan"))
                        for s in sets])


def cache_key(model, images: torch.Tensor, levels: int, reruns: int, seed: int) -> str:
    """Keyed by the model's weights, the images and the settings."""
    h = hashlib.sha1()
    h.update(f"v{CURVE_VERSION}-{type(model).__name__}-{levels}-{reruns}-{seed}".encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def load_or_build_curves(model, images: torch.Tensor, cache_dir: Optional[str], levels: int = 8, reruns: int = 20,
                         seed: int = 0, progress: bool = True, name: str = "model", memory: int = CURVES_MEMORY):
    """(curves, seconds their building took, whether they came from the cache). A cached file keeps the
    seconds of the build that wrote it (None for files written before it did), so that a method's cost can
    count its curves however often they are reused."""
    path = None
    if cache_dir:
        path = os.path.join(cache_dir, f"curves-{name}-{cache_key(model, images, levels, reruns, seed)}.json")
        if os.path.isfile(path):
            try:
                data = read_json(path, "")
                heads = data["curves"] if "curves" in data else data
                return {k: NoiseScoreCurve(**v) for k, v in heads.items()}, data.get("build_seconds"), True
            except (DamagedFileError, TypeError, AttributeError, KeyError):
                warnings.warn(f"{path} is damaged; the curves are built again")
    t0 = time.perf_counter()
    curves = build_curves(model, images, levels, reruns, seed, progress, memory=memory)
    seconds = time.perf_counter() - t0
    if path:
        atomic_write_json({"curves": {k: asdict(v) for k, v in curves.items()}, "build_seconds": seconds}, path)
    return curves, seconds, False
