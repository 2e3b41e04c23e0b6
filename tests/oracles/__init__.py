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

from selfocus_ext.testing.weights import randomize  # noqa: F401  (the oracles' seeded weights)

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


def _mmcv_dcn_function(x, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups):
    """mmcv's ``modulated_deform_conv2d`` call, computed by the project's plain-torch reference op."""
    from selfocus_ext.ops import reference

    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    return reference.deform_conv2d(x, offset, mask, weight, bias, pair(stride), pair(padding), pair(dilation), groups,
                                   deform_groups)


class _MmcvModulatedDeformConv2d(torch.nn.Module):
    """The attributes and parameters of mmcv's ``ModulatedDeformConv2d`` that subclasses rely on."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deform_groups=1, bias=True):
        super().__init__()
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, pair(kernel_size)
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)
        self.groups, self.deform_groups = groups, deform_groups
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if bias else None

    def init_weights(self):
        torch.nn.init.normal_(self.weight, std=0.01)


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
    _stub("mmcv.ops", ModulatedDeformConv2d=_MmcvModulatedDeformConv2d, modulated_deform_conv2d=_mmcv_dcn_function)
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


def line_nms_kernel_port(boxes: torch.Tensor, scores: torch.Tensor, overlap: float, top_k: int, layout=(0, 1, 2)):
    """A plain-Python port of the published CUDA line NMS kernels (their 64-wide block masks and sequential
    collect), for calling the reference post-processing on the CPU: (keep, num_to_keep, None). ``layout``:
    where start, length and the first x sit (pytorch-auto-drive (0, 1, 2); official LaneATT / CLRNet (2, 4, 5));
    both kernels read index 4 for the length sign test."""
    import numpy as np

    boxes = boxes.detach().float().cpu().numpy()
    idx = torch.sort(scores.detach().cpu(), descending=True, stable=True).indices.numpy()
    n, width = boxes.shape
    si, li, xi = layout
    strips, f32 = width - xi - 1, np.float32

    def iou(a, b):  # the kernel's devIoU, with its float and double promotions
        sa = int(float(f32(a[si]) * f32(strips)) + 0.5)
        sb = int(float(f32(b[si]) * f32(strips)) + 0.5)
        start = max(sa, sb)
        ea = int(float(f32(f32(sa) + a[li]) - f32(1)) + 0.5 - float((a[4] - 1) < 0))
        eb = int(float(f32(f32(sb) + b[li]) - f32(1)) + 0.5 - float((b[4] - 1) < 0))
        end = min(ea, eb, strips)
        if end < start:
            return False
        dist = f32(0)
        for i in range(xi + start, xi + end + 1):
            dist = f32(dist + (b[i] - a[i] if a[i] < b[i] else a[i] - b[i]))
        return bool(dist < f32(overlap) * f32(end - start + 1))

    blocks = (n + 63) // 64
    mask = np.zeros((n, blocks), dtype=np.uint64)
    for i in range(n):
        for j in range(i + 1, n):
            if iou(boxes[idx[i]], boxes[idx[j]]):
                mask[i, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    removed = np.zeros(blocks, dtype=np.uint64)
    keep = []
    for i in range(n):
        if not (int(removed[i // 64]) >> (i % 64)) & 1:
            keep.append(int(idx[i]))
            removed |= mask[i]
            if len(keep) == top_k:
                break
    return torch.tensor(keep + [0] * (n - len(keep)), dtype=torch.long), len(keep), None


def laneatt_official():
    """The official LaneATT module class and its anchor frequency file (its compiled NMS is not loaded: the
    tests compare the raw proposals, before suppression)."""
    if "laneatt" not in _CACHE:
        root = reference_dir("lucastabelini-LaneATT")
        import_torchvision()
        with _isolated(root, ("lib", "nms")):
            _stub("nms", nms=_unusable("nms"))
            _CACHE["laneatt"] = importlib.import_module("lib.models.laneatt").LaneATT
    return _CACHE["laneatt"], os.path.join(reference_dir("lucastabelini-LaneATT"), "data", "culane_anchors_freq.pt")


class _ConvModule(torch.nn.Module):
    """mmcv's ConvModule as the references use it: conv, then batch norm (``bn``) and ReLU when configured;
    the convolution has a bias exactly when there is no norm (``bias='auto'``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias="auto", conv_cfg=None, norm_cfg=None, act_cfg=dict(type="ReLU"), inplace=True, **kwargs):
        super().__init__()
        if bias == "auto":
            bias = norm_cfg is None
        self.conv = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias)
        self.bn = torch.nn.BatchNorm2d(out_channels) if norm_cfg is not None else None
        self.act = act_cfg is not None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return torch.relu(x) if self.act else x


def clrnet_reference():
    """CLRNet's backbone wrapper, FPN and head classes; stand-ins: mmcv's ConvModule (above), its fp16
    decorator, the config helpers' third-party imports, and the compiled NMS (the kernel port with CLRNet's
    77-value layout)."""
    if "clrnet" not in _CACHE:
        root = reference_dir("Turoad-CLRNet")
        import_torchvision()
        _stub("mmcv")
        sys.modules["mmcv"].cnn = types.ModuleType("mmcv.cnn")
        sys.modules["mmcv"].cnn.ConvModule = _ConvModule
        sys.modules["mmcv.cnn"] = sys.modules["mmcv"].cnn
        sys.modules["mmcv"].jit = lambda *a, **k: (lambda fn: fn)  # a decorator of the unused accuracy helper
        _stub("mmcv.runner", auto_fp16=lambda *a, **k: (lambda fn: fn))
        _stub("addict", Dict=dict)
        _stub("six", string_types=(str,))
        _stub("yapf")
        _stub("yapf.yapflib")
        _stub("yapf.yapflib.yapf_api", FormatCode=_unusable("FormatCode"))
        with _isolated(root, ("clrnet",)):
            _stub("clrnet.ops", nms=lambda boxes, scores, overlap, top_k: line_nms_kernel_port(
                boxes, scores, overlap, top_k, layout=(2, 4, 5)))
            heads = importlib.import_module("clrnet.models.heads.clr_head")
            necks = importlib.import_module("clrnet.models.necks.fpn")
            backbones = importlib.import_module("clrnet.models.backbones.resnet")
            _CACHE["clrnet"] = (backbones.ResNetWrapper, necks.FPN, heads.CLRHead, heads)
    return _CACHE["clrnet"]


def _provide(module: str, **attrs) -> types.ModuleType:
    """A stand-in module (created if absent, attached to its parent) with the given names added where
    missing: several references share the ``mmcv`` stand-ins."""
    m = sys.modules.get(module)
    if m is None:
        m = sys.modules[module] = types.ModuleType(module)
        if "." in module:
            parent, _, child = module.rpartition(".")
            setattr(_provide(parent), child, m)
    for k, v in attrs.items():
        if not hasattr(m, k):
            setattr(m, k, v)
    return m


class _Registry:
    """mmcv's Registry as the model files use it: ``@REG.register_module`` with or without a call."""

    def register_module(self, cls=None, **kwargs):
        return cls if cls is not None else (lambda c: c)


def _mmcv_for_mmdet_forks():
    """The mmcv names the mmdetection forks' model files import: the ConvModule replica, builders of a plain
    convolution / batch norm (mmcv's naming: ``bn<postfix>``), no-op initialisers and fp16 decorator."""
    noop = lambda *a, **k: None
    _provide("mmcv", Timer=_unusable("Timer"), Config=_unusable("Config"), DictAction=_unusable("DictAction"))
    _provide("mmcv.cnn", ConvModule=_ConvModule, xavier_init=noop, constant_init=noop, kaiming_init=noop,
             normal_init=noop, bias_init_with_prob=lambda p: 0.0,
             build_conv_layer=lambda cfg, *a, **k: torch.nn.Conv2d(*a, **k),
             build_norm_layer=lambda cfg, n, postfix="": (f"bn{postfix}", torch.nn.BatchNorm2d(n)))
    _provide("mmcv.runner", load_checkpoint=_unusable("load_checkpoint"), get_dist_info=_unusable("get_dist_info"),
             init_dist=_unusable("init_dist"), auto_fp16=lambda *a, **k: (lambda fn: fn))
    _provide("mmcv.parallel", MMDataParallel=_unusable("MMDataParallel"),
             MMDistributedDataParallel=_unusable("MMDistributedDataParallel"))
    _provide("mmcv.utils", Registry=lambda *a, **k: _Registry(), build_from_cfg=_unusable("build_from_cfg"))


def _load_file(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _mmdet_fork(root: str, alias: str, extra_mmdet=None):
    """Model files of an mmdetection fork, imported one at a time as ``<alias>.models.<package>.<file>``
    without running the packages' ``__init__`` (their registries pull in every model, dataset and compiled
    op). ``..builder`` is a stand-in registry module; the absolute ``mmdet.*`` names the files import are
    stand-ins for the import's duration (``extra_mmdet``: more of them, module -> names)."""
    _mmcv_for_mmdet_forks()
    models = os.path.join(root, "mmdet", "models")
    for pkg in ("", ".models", ".models.necks", ".models.dense_heads", ".models.detectors", ".models.backbones",
                ".models.utils", ".models.losses"):
        m = types.ModuleType(alias + pkg)
        m.__path__ = [os.path.join(root, "mmdet", *pkg.split(".")[1:])]
        sys.modules[alias + pkg] = m
    reg = _Registry()
    sys.modules[alias + ".models.builder"] = types.SimpleNamespace(
        HEADS=reg, NECKS=reg, DETECTORS=reg, BACKBONES=reg, LOSSES=reg, build_loss=_unusable("build_loss"))
    sys.modules[alias + ".models.detectors.single_stage"] = types.SimpleNamespace(
        SingleStageDetector=torch.nn.Module)
    sys.modules[alias + ".models.losses"].CondLaneLoss = _unusable("CondLaneLoss")
    stand_ins = {"mmdet.core": dict(auto_fp16=lambda *a, **k: (lambda fn: fn)),
                 "mmdet.ops": dict(build_plugin_layer=_unusable("build_plugin_layer")),
                 "mmdet.utils": dict(get_root_logger=_unusable("get_root_logger"))}
    for k, v in (extra_mmdet or {}).items():
        stand_ins.setdefault(k, {}).update(v)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "mmdet"}
    for k in saved:
        del sys.modules[k]
    for k, v in stand_ins.items():
        _provide(k, **v)
    try:
        utils = sys.modules[alias + ".models.utils"]
        utils.ResLayer = _load_file(alias + ".models.utils.res_layer", os.path.join(models, "utils", "res_layer.py")).ResLayer
        yield lambda rel: _load_file(alias + ".models." + rel.replace("/", ".")[:-3], os.path.join(models, rel))
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] == "mmdet"]:
            del sys.modules[k]
        sys.modules.update(saved)


@contextlib.contextmanager
def cuda_calls_on_cpu():
    """The forks' test-time code moves constants with ``.cuda()`` and builds some on ``device='cuda'``: here
    those stay on the CPU, and ``np.long`` (removed from numpy, used by CondLaneNet's head) is int64."""
    import numpy as np

    original_cuda, had_long = torch.Tensor.cuda, hasattr(np, "long")
    torch.Tensor.cuda = lambda self, *a, **k: self
    if not had_long:
        np.long = np.int64
    try:
        yield
    finally:
        torch.Tensor.cuda = original_cuda
        if not had_long:
            del np.long


def condlanenet_reference():
    """CondLaneNet's ResNet, TransConvFPN, CondLaneHead, CondLanePostProcessor and its CULane writer's
    ``adjust_result``, from the official mmdetection fork (see ``_mmdet_fork``)."""
    if "condlane" not in _CACHE:
        root = reference_dir("aliyun-conditional-lane-detection")
        with _mmdet_fork(root, "condlane_ref") as load:
            resnet = load("backbones/resnet.py")
            neck = load("necks/trans_fpn.py")
            head = load("dense_heads/condlanenet_head.py")
            detector = load("detectors/condlanenet.py")
            _provide("mmdet.datasets", build_dataloader=_unusable("build_dataloader"),
                     build_dataset=_unusable("build_dataset"))
            _provide("mmdet.models", build_detector=_unusable("build_detector"))
            _provide("mmdet.models.detectors.condlanenet", CondLaneNet=detector.CondLaneNet,
                     CondLanePostProcessor=detector.CondLanePostProcessor)
            _provide("mmdet.utils.general_utils", mkdir=_unusable("mkdir"))
            with _isolated(root, ("tools",)):
                writer = importlib.import_module("tools.condlanenet.culane.test_culane")
        _CACHE["condlane"] = types.SimpleNamespace(
            ResNet=resnet.ResNet, TransConvFPN=neck.TransConvFPN, CondLaneHead=head.CondLaneHead,
            PostProcessor=detector.CondLanePostProcessor, adjust_result=writer.adjust_result,
            out_result=writer.out_result)
    return _CACHE["condlane"]


class _DeformConv1D(torch.nn.Module):
    """GANet's ``DeformConv1D`` (1 x k, no modulation, no bias), computed by the project's plain-torch
    reference op with a unit mask."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=False):
        super().__init__()
        self.stride, self.padding, self.dilation = (1, stride), (0, padding), (1, dilation)
        self.groups, self.deformable_groups = groups, deformable_groups
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels // groups, 1, kernel_size))

    def forward(self, x, offset):
        from selfocus_ext.ops import reference

        mask = offset.new_ones(offset.shape[0], offset.shape[1] // 2, *offset.shape[2:])
        return reference.deform_conv2d(x, offset, mask, self.weight, None, self.stride, self.padding, self.dilation,
                                       self.groups, self.deformable_groups)


def ganet_reference():
    """GANet's ResNet, DeformFPN (with LanePointsConv), GANetHeadFast, PostProcessor and its CULane writer's
    ``adjust_result``, from the official mmdetection fork (see ``_mmdet_fork``); its CUDA-only
    ``DeformConv1D`` stood in by the project's reference op."""
    if "ganet" not in _CACHE:
        root = reference_dir("Wolfwjs-GANet")
        core = {n: _unusable(n) for n in ("PointGenerator", "build_assigner", "build_sampler", "images_to_levels",
                                          "multi_apply", "multiclass_nms", "unmap")}
        extra = {"mmdet.core": core, "mmdet.ops": dict(DeformConv=_unusable("DeformConv"), DeformConv1D=_DeformConv1D)}
        with _mmdet_fork(root, "ganet_ref", extra) as load:
            resnet = load("backbones/resnet.py")
            points = load("dense_heads/lanepoints_conv.py")
            _provide("mmdet.models.dense_heads", LanePointsConv=points.LanePointsConv)
            neck = load("necks/dcn_fpn.py")
            head = load("dense_heads/ganet_head.py")
            _provide("mmdet.datasets", build_dataloader=_unusable("build_dataloader"),
                     build_dataset=_unusable("build_dataset"))
            _provide("mmdet.models", build_detector=_unusable("build_detector"))
            _provide("mmdet.utils.general_utils", mkdir=_unusable("mkdir"))
            with _isolated(root, ("tools",)):
                post = importlib.import_module("tools.ganet.post_process")
                writer = importlib.import_module("tools.ganet.culane.test_dataset")
        _CACHE["ganet"] = types.SimpleNamespace(
            ResNet=resnet.ResNet, DeformFPN=neck.DeformFPN, GANetHeadFast=head.GANetHeadFast, head_module=head,
            PostProcessor=post.PostProcessor, adjust_result=writer.adjust_result,
            out_result=writer.out_result)
    return _CACHE["ganet"]


class _AttrDict(dict):
    """A config as the RESA code reads it: ``cfg.backbone.resnet`` and ``'key' in cfg.backbone``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def resa_official():
    """The official RESA's ``RESANet`` and its CULane data set class (for ``probmap2lane``), with a config
    object holding its CULane settings (``resa_official_config``)."""
    if "resa" not in _CACHE:
        root = reference_dir("ZJULearning-resa")
        import_torchvision()
        _stub("six", string_types=(str,))
        _stub("addict", Dict=dict)
        _stub("yapf")
        _stub("yapf.yapflib")
        _stub("yapf.yapflib.yapf_api", FormatCode=_unusable("FormatCode"))
        with _isolated(root, ("models", "utils", "datasets")):
            net = importlib.import_module("models.resa").RESANet
            culane = importlib.import_module("datasets.culane").CULane
        _CACHE["resa"] = (net, culane)
    return _CACHE["resa"]


def resa_official_config(img_width=800, img_height=288):
    d = _AttrDict
    return d(backbone=d(resnet="resnet50", pretrained=False, replace_stride_with_dilation=[False, True, True],
                        out_conv=True, fea_stride=8),
             resa=d(alpha=2.0, iter=4, input_channel=128, conv_stride=9), decoder="PlainDecoder",
             img_width=img_width, img_height=img_height, cut_height=240, num_classes=5)


def pad_transforms():
    """pytorch-auto-drive's ``utils/transforms/functional.py`` (resize, to_tensor, normalize), loaded alone."""
    if "pad_tf.functional" not in sys.modules:
        root = reference_dir("voldemortX-pytorch-auto-drive")
        import_torchvision()
        pkg = types.ModuleType("pad_tf")
        pkg.__path__ = [os.path.join(root, "utils", "transforms")]
        sys.modules["pad_tf"] = pkg
    return importlib.import_module("pad_tf.functional")


def resa_transforms():
    """The official RESA's ``utils/transforms.py`` (SampleResize, GroupNormalize). It names
    ``collections.Iterable``, which Python 3.10 moved to ``collections.abc``."""
    if "resa_tf" not in sys.modules:
        import collections
        import collections.abc

        if not hasattr(collections, "Iterable"):
            collections.Iterable = collections.abc.Iterable
        _load_file("resa_tf", os.path.join(reference_dir("ZJULearning-resa"), "utils", "transforms.py"))
    return sys.modules["resa_tf"]


def source_function(path: str, name: str, cls: str = None, **namespace):
    """One function (or method of ``cls``) of an implementation's file, compiled from its own source without
    the file's imports (``namespace`` supplies the names it uses) and without its decorators."""
    import ast

    tree = ast.parse(open(path).read(), path)
    scope = tree.body
    if cls is not None:
        scope = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    node = next(n for n in scope if isinstance(n, ast.FunctionDef) and n.name == name)
    node.decorator_list = []
    code = compile(ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[])), path, "exec")
    exec(code, namespace)
    return namespace[name]


class PadInference:
    """What pytorch-auto-drive's tester calls for a curve model: ``ref``'s own inference on these head outputs."""

    def __init__(self, ref, outputs):
        self.ref, self.outputs = ref, outputs

    def inference(self, images, *args, **kwargs):
        return self.ref.inference(dict(self.outputs), *args, forward=False, **kwargs)


def pad_written_lines(net, batch: int, input_sizes, gap, ppl, thresh, seg: bool, max_lane: int, out_dir) -> list:
    """The ``.lines.txt`` texts pytorch-auto-drive's tester writes (``LaneDetTester.test_one_set``, run from
    its source) for one batch: ``net`` stands for the model (``net(images)`` or ``net.inference(...)``
    returns the head outputs' lanes)."""
    import json

    pytorch_auto_drive()
    from pad_ref.lane_det_utils import lane_as_segmentation_inference

    root = reference_dir("voldemortX-pytorch-auto-drive")
    test_one_set = source_function(
        os.path.join(root, "utils", "runners", "lane_det_tester.py"), "test_one_set", cls="LaneDetTester",
        os=os, json=json, torch=torch, tqdm=lambda it: it, autocast=lambda enabled: contextlib.nullcontext(),
        lane_as_segmentation_inference=lane_as_segmentation_inference)
    names = [os.path.join(str(out_dir), "pad", f"{i:05d}.lines.txt") for i in range(batch)]

    class Net:  # what the tester needs of a model: eval(), a forward, an inference
        eval = lambda self: self  # noqa: E731
        __call__ = lambda self, images: net(images)  # noqa: E731
        inference = lambda self, *args, **kwargs: net.inference(*args, **kwargs)  # noqa: E731

    test_one_set(Net(), "cpu", [(torch.zeros(batch), names)], False, input_sizes, gap, ppl, thresh, "culane", seg,
                 max_lane)
    return [open(n).read() for n in names]
