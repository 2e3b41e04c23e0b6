"""A tune job: the settings made typed (model, data, method, budget, quantization config), the run's
directory, and what the stages share (the test set, the calibration images, evaluation into the record)."""
from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Optional

import torch
from torch import nn
from tqdm import tqdm

from ..files import DamagedFileError, load_checked
from ..models import registry
from ..models.published import CheckpointError
from ..quant import QuantConfig
from ..recon import Budget, Method, get_budget, get_method
from ..recon.curves import CURVES_MEMORY
from .data import TEST_SEED, DataSpec, EvalSet, calibration_set, evaluation_set, model_input_for, parse_data
from .evaluation import evaluate
from .run_dir import RunDir, RunSettings, UsageError


def quant_config_for(settings: RunSettings, method: Method) -> QuantConfig:
    """The run's quantization config: its bits, the first layer and heads at 8 bits unless asked otherwise, the
    weight observer asked for or the method's, the method's activation observer."""
    return QuantConfig.parse(settings.bits, first_last_bits=8 if settings.first_last_8bit else None,
                             weight_observer=settings.weight_observer or method.weight_observer,
                             act_observer=method.act_observer, matmul_bits=settings.matmul_bits)


def method_for(settings: RunSettings) -> Method:
    method = get_method(settings.method)
    return replace(method, keep_prob=settings.keep_prob) if settings.keep_prob is not None else method


def budget_for(settings: RunSettings) -> Budget:
    budget = get_budget(settings.budget, batch_size=settings.batch_size)
    if settings.iters:
        it = settings.iters
        budget = replace(budget, layer_iters=it, block_iters=it, network_iters=it, qat_iters=it,
                         refresh=max(1, round(it * budget.refresh / budget.network_iters)))
    return budget


@dataclass
class TuneJob:
    settings: RunSettings
    config: QuantConfig
    method: Method
    budget: Budget
    model: nn.Module
    spec: DataSpec
    device: str = "cpu"
    cache_dir: str = ""
    show_progress: bool = True
    export_format: Optional[str] = None
    curves_memory: int = CURVES_MEMORY  # bytes of noise the curves hold at once (results do not depend on it)
    tuning_memory: Optional[int] = None  # bytes of activations one backward pass may keep (None: no limit)
    run: Optional[RunDir] = None
    evalset: Optional[EvalSet] = None
    _images: Optional[torch.Tensor] = field(default=None, repr=False)
    _cache_base: Optional[object] = field(default=None, repr=False)

    @classmethod
    def prepare(cls, settings: RunSettings, device: str = "cpu", cache_dir: str = "", show_progress: bool = True,
                export_format: Optional[str] = None, curves_memory: int = CURVES_MEMORY,
                tuning_memory: Optional[int] = None) -> "TuneJob":
        """Loads the model and checks what only the model can tell (before any directory is claimed)."""
        method = method_for(settings)
        try:
            model = registry.load(settings.model, checkpoint=settings.checkpoint, anchors=settings.anchors)
        except CheckpointError as exc:
            raise UsageError(f"--checkpoint: {exc}") from None
        if settings.top_k is not None and settings.top_k > len(model.heads):
            raise UsageError(f"--top-k {settings.top_k}: {settings.model} has {len(model.heads)} heads "
                             f"({', '.join(h.name for h in model.heads)})")
        spec = parse_data(settings.data)
        try:
            model.model_input = model_input_for(spec, model.model_input, settings.model)
        except ValueError as exc:
            raise UsageError(f"--data: {exc}") from None
        return cls(settings=settings, config=quant_config_for(settings, method), method=method,
                   budget=budget_for(settings), model=model, spec=spec, device=device, cache_dir=cache_dir,
                   show_progress=show_progress, export_format=export_format, curves_memory=curves_memory,
                   tuning_memory=tuning_memory)

    @property
    def tunes(self) -> bool:
        """Whether the method tunes after calibration (the calibration baselines stop there)."""
        return self.method.granularity is not None

    def say(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def open_test_set(self) -> EvalSet:
        if self.evalset is None:
            n = self.settings.test or (self.budget.test_scenes if self.spec.kind == "synth" else None)
            self.evalset = evaluation_set(self.spec, n, self.model.model_input, TEST_SEED)
        return self.evalset

    def calibration_images(self) -> torch.Tensor:
        """The calibration images, made once per session (only stages that still need them ask)."""
        if self._images is None:
            t = time.perf_counter()
            s = self.settings
            self._images = calibration_set(
                self.spec, s.calib, s.seed, self.model.model_input,
                progress=lambda it: tqdm(it, desc="calibration images", unit="img", disable=not self.show_progress))
            self.run.seconds.setdefault("calibration images", time.perf_counter() - t)
        return self._images

    def evaluate_into(self, model, key: str, desc: str, reference=None, device: Optional[str] = None) -> torch.Tensor:
        """Evaluates ``model`` on the test set; its lanes go to lanes-{key}.pt and its result to the record."""
        t = time.perf_counter()
        device = device or self.device
        try:
            r = evaluate(model.to(device), self.open_test_set(), progress=self.show_progress, desc=desc,
                         reference=reference, device=device)
        finally:
            model.cpu()
        xs = r.pop("xs")
        self.run.save_lanes(key, xs, r.pop("image_counts"))
        self.run.progress[key] = r
        self.run.seconds[f"evaluate {key}"] = time.perf_counter() - t
        self.run.save()
        return xs

    def cache_path(self, stage: str, *settings) -> Optional[str]:
        """Where a stage's result is cached across runs: generated scenes only (a data set on disk may change
        under its path), keyed by the weights, the model input, the test scene count and seed, the first two
        test images themselves (a change of the scene generator changes them) and the stage's ``settings``."""
        if not self.cache_dir or self.spec.kind != "synth":
            return None
        if self._cache_base is None:
            evalset = self.open_test_set()
            h = hashlib.sha1()
            mi = self.model.model_input
            h.update(f"v2-{type(self.model).__name__}-{evalset.count}-{TEST_SEED}-{mi.size}-{mi.crop_top}-"
                     f"{mi.frame.name}-{self.device}".encode())
            h.update(decoding_signature(self.model).encode())
            for k, v in sorted(self.model.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            images, _ = evalset.items(0, min(2, evalset.count))
            h.update(images.contiguous().numpy().tobytes())
            self._cache_base = h
        h = self._cache_base.copy()
        h.update(repr((stage,) + settings).encode())
        return os.path.join(self.cache_dir, f"{stage}-{self.settings.model}-{h.hexdigest()[:20]}.pt")


def decoding_signature(model: nn.Module) -> str:
    """What the cached lanes depend on besides the weights: the source of the model's class and of its
    decoder, and its lane capacity (a changed decoder must not meet the lanes of the old one)."""
    import inspect

    h = hashlib.sha1()
    classes = [type(model)]
    if getattr(model, "decoder_name", ""):
        classes.append(type(model.lane_decoder()))
    for cls in classes:
        try:
            h.update(inspect.getsource(inspect.getmodule(cls)).encode())
        except (OSError, TypeError):  # defined where no source is kept (an interactive session)
            h.update(cls.__qualname__.encode())
    h.update(repr(getattr(model, "max_lanes", None)).encode())
    return h.hexdigest()


def read_cache(path: Optional[str]):
    """A cached stage result, or None (no cache, no entry, or an unreadable one: the stage runs again)."""
    if not path or not os.path.isfile(path):
        return None
    try:
        return load_checked(path, "")
    except DamagedFileError:
        return None
