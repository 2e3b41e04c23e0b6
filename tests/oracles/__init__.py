"""Loaders for the published implementations under ../shared/reference/lane-models, used as test oracles.

They import the implementations' own module code with the smallest stand-ins for what this machine lacks:
torchvision is imported with its C-operator fake registrations skipped (its pure-Python model builders work
beside the CPU torch; its compiled ops do not load), mmcv's and timm's names that are imported but not used by
the models under test are stand-ins that fail when called, and the project's own deformable convolution stands
in for mmcv's where a model needs it. Nothing here is part of the package.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import runpy
import sys
import types

import pytest
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference",
                                    "lane-models"))


def reference_dir(name: str) -> str:
    path = os.path.join(ROOT, name)
    if not os.path.isdir(path):
        pytest.skip(f"reference implementation {name} not found at {path}")
    return path


def _unusable(name: str):
    def fail(*args, **kwargs):
        raise RuntimeError(f"{name} is a stand-in of the test harness; the model under test should not use it")
    return type(name.rsplit(".", 1)[-1], (), {"__init__": fail}) if name[0].isupper() or "." in name else fail


def _stub(module: str, **attrs) -> None:
    if module in sys.modules:
        return
    m = types.ModuleType(module)
    m.__dict__.update(attrs)
    sys.modules[module] = m


def import_torchvision():
    """torchvision's Python part, importable beside a CPU torch its compiled ops do not match."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (pip install --no-deps torchvision==0.28.0)")
    original = torch.library.register_fake

    def skip_torchvision(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            return (lambda fn: fn) if not args else args[0]
        return original(op, *args, **kwargs)

    torch.library.register_fake = skip_torchvision
    try:
        return importlib.import_module("torchvision")
    finally:
        torch.library.register_fake = original


@contextlib.contextmanager
def _on_path(path: str):
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)


def pytorch_auto_drive():
    """pytorch-auto-drive's ``utils.models`` package (as ``pad_ref.models``), without running its
    ``utils/__init__`` (data sets, losses, training code)."""
    if "pad_ref.models" in sys.modules:
        return sys.modules["pad_ref.models"]
    root = reference_dir("voldemortX-pytorch-auto-drive")
    import_torchvision()
    _stub("mmcv")
    _stub("mmcv.ops", ModulatedDeformConv2d=_unusable("mmcv.ModulatedDeformConv2d"),
          modulated_deform_conv2d=_unusable("modulated_deform_conv2d"))
    _stub("timm")
    _stub("timm.models")
    _stub("timm.models.layers", DropPath=_unusable("timm.DropPath"), to_2tuple=_unusable("to_2tuple"),
          trunc_normal_=_unusable("trunc_normal_"))
    pkg = types.ModuleType("pad_ref")
    pkg.__path__ = [os.path.join(root, "utils")]
    sys.modules["pad_ref"] = pkg
    return importlib.import_module("pad_ref.models")


def pad_config(relative: str) -> dict:
    """A pytorch-auto-drive config file's ``model``/``test`` dicts (its data-pipeline imports stubbed)."""
    root = reference_dir("voldemortX-pytorch-auto-drive")
    _stub("importmagician", import_from=lambda path: contextlib.nullcontext())
    with _on_path(root):
        return runpy.run_path(os.path.join(root, relative))


def randomize(module: torch.nn.Module, seed: int = 0, gain: float = 1.0) -> torch.nn.Module:
    """Seeded random weights and batch-norm statistics (so no layer is an identity), eval mode. ``gain``
    scales the weights' spread (below 1 keeps recurrent aggregations such as RESA's from growing without
    bound)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif name.endswith("weight") and t.dim() == 1:  # norm scales
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            else:
                fan_in = t[0].numel() if t.dim() > 1 else t.numel()
                t.copy_(torch.randn(t.shape, generator=gen) * gain * (1.0 / fan_in) ** 0.5)
    return module.eval()


@contextlib.contextmanager
def _isolated(root: str, packages):
    """Imports from ``root`` whose top-level package names (``model``, ``utils``, ...) other references also
    use: those names are cleared before and restored after, the imported modules kept by the caller."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in packages}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, root)
    try:
        yield
    finally:
        sys.path.remove(root)
        for k in [k for k in sys.modules if k.split(".")[0] in packages]:
            del sys.modules[k]
        sys.modules.update(saved)


_CACHE = {}


def ultra_fast_lane_detection():
    """(parsingNet, generate_lines) of Ultra-Fast-Lane-Detection v1; the writer's imports that it does not
    use (data loaders, the TuSimple scorer, distributed helpers) are stand-ins."""
    if "ufld" not in _CACHE:
        root = reference_dir("cfzd-Ultra-Fast-Lane-Detection")
        import_torchvision()
        with _isolated(root, ("model", "data", "evaluation", "utils")):
            _stub("data.dataloader", get_test_loader=_unusable("get_test_loader"))
            _stub("evaluation.tusimple.lane", LaneEval=_unusable("LaneEval"))
            _stub("utils.dist_utils", **{n: _unusable(n) for n in ("is_main_process", "dist_print", "get_rank",
                                                                   "get_world_size", "dist_tqdm", "synchronize")})
            net = importlib.import_module("model.model").parsingNet
            writer = importlib.import_module("evaluation.eval_wrapper").generate_lines
        _CACHE["ufld"] = (net, writer)
    return _CACHE["ufld"]
