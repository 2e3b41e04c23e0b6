"""Model conversion: BatchNorm folding, quantized layers in place of convolutions and linear layers,
calibration, saving and loading, integer export."""
from __future__ import annotations

import copy
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from tqdm import tqdm

from ..files import load_checked, save_checked
from ..layers.deform import ModulatedDeformConv2d
from .config import QuantConfig
from ..layers.matmul import MatMul
from .modules import QUANT_TYPES, QuantLayer, QuantMatMul
from .observers import check_finite

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
# layers a following BatchNorm folds into: their output channel count and the weight dimension that holds it
_FOLDS_INTO = {nn.Conv1d: 0, nn.Conv2d: 0, nn.Linear: 0, ModulatedDeformConv2d: 0, nn.ConvTranspose2d: 1}


def _out_channels(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    if type(layer) not in _FOLDS_INTO or not isinstance(bn, _BN) or not bn.track_running_stats:
        return False
    if isinstance(layer, nn.ConvTranspose2d) and layer.groups != 1:
        return False
    return bn.num_features == _out_channels(layer)


def adjacent_pairs(model: nn.Module) -> List[Tuple[str, str]]:
    """(layer, BatchNorm) names where the BatchNorm directly follows the layer inside a container."""
    pairs = []
    for pname, parent in model.named_modules():
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            if _foldable(parent._modules[a], parent._modules[b]):
                pairs.append((f"{pname}.{a}" if pname else a, f"{pname}.{b}" if pname else b))
    return pairs


def traced_pairs(model: nn.Module, example: torch.Tensor, ran: Optional[set] = None) -> List[Tuple[str, str]]:
    """(layer, BatchNorm) names where, in a forward pass on ``example``, the BatchNorm's input is the very
    tensor the layer returned, at every call (a layer shared across stages is called as often as its
    BatchNorm), and nothing else reads that tensor (counted on the autograd graph of the pass, so a residual
    that also reads it rules the pair out): the pairs, including
    those declaration order does not show (e.g. two ModuleLists of layers and norms). ``ran``: filled with the
    names of the BatchNorms the pass called."""
    made: Dict[int, Tuple[str, torch.Tensor]] = {}
    calls: Dict[str, int] = {}
    reads: Dict[str, List[Optional[Tuple[str, torch.Tensor]]]] = {}
    handles = []
    modules = dict(model.named_modules())

    def produced(name):
        def hook(module, args, out):
            calls[name] = calls.get(name, 0) + 1
            if torch.is_tensor(out):
                made[id(out)] = (name, out)  # the tensor kept alive: its id is not reused during the pass
        return hook

    def read(name):
        def hook(module, args, out):
            calls[name] = calls.get(name, 0) + 1
            src = made.get(id(args[0])) if args and torch.is_tensor(args[0]) else None
            reads.setdefault(name, []).append(src if src is not None and src[1] is args[0] else None)
        return hook

    roots: List[torch.Tensor] = []  # every module's outputs: the autograd graph is walked from all of them, so
    # a reader whose result is later detached (e.g. a stage's refined priors) still counts

    def keep(module, args, out):
        roots.extend(t for t in (out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple))
                                 else [out]) if torch.is_tensor(t))

    for name, m in modules.items():
        if type(m) in _FOLDS_INTO:
            handles.append(m.register_forward_hook(produced(name)))
        elif isinstance(m, _BN):
            handles.append(m.register_forward_hook(read(name)))
        handles.append(m.register_forward_hook(keep))
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            outputs = _outputs(model, example.detach().clone().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if ran is not None:
        ran.update(reads)
    users = _graph_users(roots)  # the model's own outputs are among them (its hook too)
    pairs = []
    for bn, sources in reads.items():
        if any(s is None for s in sources) or len({s[0] for s in sources}) != 1:
            continue
        layer = sources[0][0]
        if calls.get(layer) != len(sources) or not _foldable(modules[layer], modules[bn]):
            continue
        if all(s[1].grad_fn is not None and users.get(s[1].grad_fn, 0) == 1 and not any(o is s[1] for o in outputs)
               for s in sources):
            pairs.append((layer, bn))
    return pairs


def _graph_users(outputs: List[torch.Tensor]) -> Dict[object, int]:
    """How many times each autograd node of the pass feeds another one (its readers)."""
    users: Dict[object, int] = {}
    seen = set()
    stack = [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                users[nxt] = users.get(nxt, 0) + 1
                stack.append(nxt)
    return users


@torch.no_grad()
def _fold_pair(model: nn.Module, layer_name: str, bn_name: str) -> None:
    layer = model.get_submodule(layer_name)
    bn = model.get_submodule(bn_name)
    inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    dim = _FOLDS_INTO[type(layer)]
    shape = [1] * layer.weight.dim()
    shape[dim] = -1
    layer.weight.mul_(inv.reshape(shape))
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    layer.bias = nn.Parameter((bias - bn.running_mean) * inv + bn.bias)
    # what the folded BatchNorm expected of its input (PD-Quant's distribution correction reads it back)
    layer.folded_bn = {"mean": bn.running_mean.detach().clone(),
                       "std": torch.sqrt(bn.running_var + bn.eps).detach().clone(),
                       "scale": inv.detach().clone(), "shift": bn.bias.detach().clone()}
    parent, attr = _parent(model, bn_name)
    setattr(parent, attr, nn.Identity())


def _outputs(model: nn.Module, example: torch.Tensor) -> List[torch.Tensor]:
    out = model(example)
    items = out.values() if isinstance(out, dict) else (out if isinstance(out, (list, tuple)) else [out])
    return [t for t in items if torch.is_tensor(t)]


def _same(a: List[torch.Tensor], b: List[torch.Tensor]) -> bool:
    """Equal up to float rounding amplified by the network (a wrong fold moves outputs by the BatchNorm's
    affine change, far more than 1% of their range)."""
    return len(a) == len(b) and all(
        x.shape == y.shape and float((x - y).abs().max()) <= 1e-2 * (float(y.abs().max()) + 1e-6)
        for x, y in zip(a, b))


@torch.no_grad()
def fold_batchnorm(model: nn.Module, example: Optional[torch.Tensor] = None) -> int:
    """See :func:`folded_pairs`; returns the count."""
    return len(folded_pairs(model, example))


@torch.no_grad()
def fold_pairs(model: nn.Module, pairs: Sequence[Sequence[str]]) -> None:
    """Folds exactly these (layer, BatchNorm) pairs (those a saved model was quantized with)."""
    modules = dict(model.named_modules())
    for layer, bn in pairs:
        if layer not in modules or bn not in modules or not _foldable(modules[layer], modules[bn]):
            raise ValueError(f"BatchNorm folding: {bn!r} does not fold into {layer!r} in this model")
        _fold_pair(model, layer, bn)


@torch.no_grad()
def folded_pairs(model: nn.Module, example: Optional[torch.Tensor] = None) -> List[Tuple[str, str]]:
    """Folds BatchNorms into the convolution, deformable convolution, transposed convolution or linear layer
    they follow (running statistics, i.e. inference behaviour); a folded BatchNorm becomes Identity. Returns
    the folded (layer, BatchNorm) names. Without ``example``: the BatchNorms declared directly after their layer inside a container.
    With an ``example`` input: also every BatchNorm that reads its layer's output in a forward pass, and a
    fold is kept only where the model still computes what it did on the example (a layer output that
    something else also reads, e.g. a residual, cannot take its BatchNorm)."""
    pairs = adjacent_pairs(model)
    if example is None:
        for pair in pairs:
            _fold_pair(model, *pair)
        return pairs
    param = next(model.parameters(), None)
    if param is not None:
        example = example.to(param.device)
    ran: set = set()
    traced = traced_pairs(model, example, ran)
    # where the pass shows what a BatchNorm reads, that decides; declaration order only for the others
    pairs = traced + [p for p in pairs if p[1] not in ran]
    if not pairs:
        return []
    model.eval()
    before = _outputs(model, example)
    saved = copy.deepcopy(model)
    for pair in pairs:
        _fold_pair(model, *pair)
    if _same(_outputs(model, example), before):
        return pairs
    for pair in pairs:  # some fold is wrong: undo all, then keep them one at a time
        _restore(model, saved, pair)
    kept = []
    for pair in pairs:
        _fold_pair(model, *pair)
        if _same(_outputs(model, example), before):
            kept.append(pair)
        else:
            _restore(model, saved, pair)
    return kept


def _restore(model: nn.Module, saved: nn.Module, pair: Tuple[str, str]) -> None:
    """The layer and the BatchNorm of ``pair`` back as they were (fresh copies from ``saved``)."""
    for name in pair:
        parent, attr = _parent(model, name)
        setattr(parent, attr, copy.deepcopy(saved.get_submodule(name)))


def example_input(model: nn.Module) -> Optional[torch.Tensor]:
    """A seeded random input batch of one for models that declare their input size (``model_input.size``),
    used to find which layer each BatchNorm reads; None for others."""
    size = getattr(getattr(model, "model_input", None), "size", None)
    if size is None:
        return None
    w, h = (int(v) for v in size)
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))


def _quantizable(model: nn.Module) -> List[str]:
    return [n for n, m in model.named_modules() if type(m) in QUANT_TYPES
            and not (isinstance(m, nn.ConvTranspose2d) and (m.groups != 1 or m.padding_mode != "zeros"))]


def as_config(config: Union[QuantConfig, str], **overrides) -> QuantConfig:
    """A ``QuantConfig`` as it is, or one parsed from a bit setting such as "w4a4" with ``overrides`` (the
    keyword arguments of ``quantize_model`` kept for callers that name the setting as a string)."""
    if isinstance(config, QuantConfig):
        if overrides:
            raise TypeError(f"quantize_model: pass these settings inside the QuantConfig: {sorted(overrides)}")
        return config
    if not isinstance(config, str):
        raise TypeError(f"config: expected a QuantConfig or a bit setting such as 'w4a4', got {type(config).__name__}")
    first_last_8bit = overrides.pop("first_last_8bit", True)
    return QuantConfig.parse(config, first_last_bits=8 if first_last_8bit else None, **overrides)


def quantize_model(model: nn.Module, config: Union[QuantConfig, str] = "w4a4", *,
                   example: Optional[torch.Tensor] = None, folds: Optional[Sequence[Sequence[str]]] = None,
                   **overrides) -> nn.Module:
    """A copy of ``model`` with BatchNorm folded and every Conv1d/Conv2d/Linear replaced by its quantized
    version (weights per output channel, input activations per tensor). The first layer and the heads'
    output layers (``model.head_layers`` when declared, else the last layer) take ``config.first_last_bits``
    (8 by default); layers named in ``config.skip`` stay in float. Other layer types with parameters are left
    in float and listed in a warning. Call ``calibrate`` before use.

    BatchNorm folding (``config.fold``): "traced" also finds the BatchNorms a forward pass on ``example`` (or,
    for a model that declares ``model_input``, a seeded random input of its size) shows reading a layer's
    output; ``folds`` replays a saved model's exact (layer, BatchNorm) pairs instead.

    ``config`` may also be a bit setting such as "w4a4", with ``first_last_8bit``, ``skip``,
    ``weight_observer`` and ``act_observer`` as keywords."""
    config = as_config(config, **overrides)
    w_bits, a_bits = config.weight_bits, config.act_bits
    skip = config.skip
    qmodel = copy.deepcopy(model).eval()
    if folds is not None:
        fold_pairs(qmodel, folds)
        folded = [tuple(p) for p in folds]
    else:
        if example is None and config.fold == "traced":
            example = example_input(qmodel)
        folded = folded_pairs(qmodel, example if config.fold == "traced" else None)
    names = _quantizable(qmodel)
    if not names:
        raise ValueError("quantize_model: the model has no Conv1d, Conv2d or Linear layer to quantize")
    heads = list(getattr(model, "head_layers", None) or [names[-1]])
    unknown = [h for h in list(heads) + list(skip) if h not in names]
    if unknown:
        raise ValueError(f"quantize_model: no quantizable layer named {unknown}; layers: {names}")
    edges = {names[0], *heads}
    for name in names:
        if name in skip:
            continue
        parent, attr = _parent(qmodel, name)
        layer = getattr(parent, attr)
        wb, ab = config.first_last() if name in edges else (w_bits, a_bits)
        setattr(parent, attr, QUANT_TYPES[type(layer)](layer, wb, ab, config.weight_observer, config.act_observer))
    if config.matmul_bits is not None:
        for name, m in list(qmodel.named_modules()):
            if isinstance(m, MatMul):
                parent, attr = _parent(qmodel, name)
                setattr(parent, attr, QuantMatMul(m, config.matmul_bits, config.act_observer))
    left = sorted({type(m).__name__ for n, m in qmodel.named_modules()
                   if not isinstance(m, (QuantLayer, nn.Identity)) and not list(m.children()) and n not in skip
                   and any(True for _ in m.parameters(recurse=False))})
    if left:
        warnings.warn(f"quantize_model: layers of these types stay in float: {left}", stacklevel=2)
    qmodel.quant_config = dict(config.to_dict(), folded_bn=len(folded), folded=[list(p) for p in folded])
    return qmodel


def _parent(model: nn.Module, name: str):
    parts = name.split(".")
    parent = model
    for p in parts[:-1]:
        parent = getattr(parent, p)
    return parent, parts[-1]


def matmul_quantizers(model: nn.Module) -> list:
    """The operand quantizers of the model's quantized activation products (``QuantMatMul``)."""
    return [q for m in model.modules() if isinstance(m, QuantMatMul) for q in m.quantizers()]


def quant_layers(model: nn.Module) -> Dict[str, QuantLayer]:
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantLayer)}


def _batches(images: torch.Tensor, batch_size: int) -> Iterable[torch.Tensor]:
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]


@torch.no_grad()
def calibrate(qmodel: nn.Module, images: torch.Tensor, weight_observer: Optional[str] = None,
              act_observer: Optional[str] = None, batch_size: int = 32, progress: bool = False) -> nn.Module:
    """Sets every scale: weights from their observer, activation steps from two passes over ``images``
    with the float model (the first fixes signedness, the second runs the observer). Scales are then
    frozen. Deterministic for the same images."""
    if not isinstance(images, torch.Tensor) or images.numel() == 0 or len(images) == 0:
        raise ValueError("calibrate: the calibration set is empty")
    check_finite(images, "calibrate: calibration images")
    layers = quant_layers(qmodel)
    if not layers:
        raise ValueError("calibrate: no quantized layers (use quantize_model first)")
    qmodel.eval()
    for layer in layers.values():
        if weight_observer:
            layer.weight_quantizer.observer_name = weight_observer
        layer.weight_quantizer.calibrate(layer.weight)
        layer.quantize_weight = False
    inputs = [layer.input_quantizer for layer in layers.values()] + matmul_quantizers(qmodel)
    if act_observer:
        for q in inputs:
            q.observer_name = act_observer
    for phase in ("sign", "observe"):
        for q in inputs:
            q.begin_sign_pass() if phase == "sign" else q.begin_observe_pass()
        for batch in tqdm(list(_batches(images, batch_size)), desc=f"calibration ({phase})", disable=not progress):
            qmodel(batch)
    for q in inputs:
        q.end_calibration()
    for layer in layers.values():
        layer.quantize_weight = True
    return qmodel


def save_quantized(qmodel: nn.Module, path: str) -> None:
    """The quantized model's configuration and state (float weights, scales, steps, AdaRound state), written
    atomically with a checksum."""
    save_checked({"config": qmodel.quant_config, "state": qmodel.state_dict()}, path)


def load_quantized(float_model: nn.Module, path: str,
                   remedy: str = "make it again with python -m selfocus_ext.tune") -> nn.Module:
    """Rebuilds the quantized model around ``float_model`` (same architecture) and loads the saved state
    (verified against its checksum; no code is run from the file)."""
    saved = load_checked(path, remedy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = quantize_model(float_model, QuantConfig.from_dict(saved["config"]), folds=saved["config"].get("folded"))
    state = saved["state"]
    for name, m in qmodel.named_modules():
        if isinstance(m, QuantMatMul):
            for q in ("a_quantizer", "b_quantizer"):
                getattr(m, q).step = torch.empty_like(state[f"{name}.{q}.step"])
    for name, layer in quant_layers(qmodel).items():
        layer.weight_quantizer.scale = torch.empty_like(state[f"{name}.weight_quantizer.scale"])
        layer.input_quantizer.step = torch.empty_like(state[f"{name}.input_quantizer.step"])
        if f"{name}.input_quantizer.offset" in state:  # trained with LSQ+ offsets
            layer.input_quantizer.offset = torch.empty_like(state[f"{name}.input_quantizer.offset"])
    qmodel.load_state_dict(state)
    return qmodel.eval()


@torch.no_grad()
def export_int_weights(qmodel: nn.Module) -> Dict[str, Dict[str, torch.Tensor]]:
    """Integer weights for inspection: per layer the int8 levels, the per-channel scales and the bits."""
    from .observers import qmax

    out = {}
    for name, layer in quant_layers(qmodel).items():
        wq = layer.weight_quantizer
        s = wq.scale.reshape(-1, *([1] * (layer.weight.dim() - 1)))
        levels = torch.round(layer.qweight() / s).to(torch.int8)
        out[name] = {"weight": levels, "scale": wq.scale.clone(), "bits": torch.tensor(wq.bits)}
        assert int(levels.abs().max()) <= qmax(wq.bits, True) + 1
    return out
