"""The frozen quantized model as an ONNX graph with QuantizeLinear/DequantizeLinear nodes.

How: torch's dynamo exporter traces the network; ``torch.ops.selfocus.act_quant`` and ``fake_quant`` (the
only places quantization happens) get our own ONNX translations, which emit the Q/DQ pairs with the storage
type each layer needs -- int4/uint4 (opset 21) or an 8-bit container with a Clip to the low-bit range. The
translations see the bits and signedness as Python constants, so no marker nodes or guessing are needed
afterwards. Why not the exporters' built-in fake-quant support: both torch exporters reject quantization
ranges narrower than 8 bits. A short pass over the ONNX graph then stores each weight as integers (the
QuantizeLinear of a constant becomes its integer initializer, computed from the on-grid weights, so the
integers are exactly the PyTorch model's) and quantizes each convolution's bias to int32 on the
accumulator grid (input step x weight scale), as integer runtimes expect.
"""
from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .frozen import INT32_MAX, ExportError, LayerQuant

FORMATS = ("qdq", "qcdq")
BIASES = ("int32", "float")
OPSET = 21


def require_onnx():
    import importlib

    try:
        for module in ("onnx", "onnxscript"):
            importlib.import_module(module)
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the optional packages onnx and onnxscript ({exc.name} is missing): "
                          "pip install -e .[export]") from None


def storage(bits: int, signed: bool, fmt: str) -> Tuple[int, Optional[Tuple[int, int]]]:
    """(ONNX element type, Clip range or None) for ``bits``-bit values in format ``fmt``."""
    from onnx import TensorProto

    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if fmt == "qdq":
        if bits == 8:
            return (TensorProto.INT8 if signed else TensorProto.UINT8), None
        if bits == 4:
            return (TensorProto.INT4 if signed else TensorProto.UINT4), None
        raise ExportError(f"format 'qdq' stores 4- and 8-bit values; {bits} bits need format 'qcdq'")
    return (TensorProto.INT8 if signed else TensorProto.UINT8), ((lo, hi) if bits < 8 else None)


def check_formats(spec: Dict[str, LayerQuant], fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    for name, q in spec.items():
        for what, bits in (("weights", q.weight_bits), ("input", q.act_bits)):
            if bits:
                try:
                    storage(bits, True, fmt)
                except ExportError as exc:
                    raise ExportError(f"layer {name!r} ({what}): {exc}") from None


def _translations(fmt: str) -> dict:
    import onnx
    from onnxscript import opset21 as op

    def const(value: int, dtype: int):
        return op.Constant(value=onnx.helper.make_tensor("c", dtype, [], [value]))

    def act_quant(x, step, bits: int, signed: bool, keep_prob: float = 1.0, seed: int = 0, grad_scale: float = 1.0):
        dtype, clip = storage(bits, signed, fmt)
        q = op.QuantizeLinear(x, step, output_dtype=dtype)
        if clip:
            q = op.Clip(q, const(clip[0], dtype), const(clip[1], dtype))
        return op.DequantizeLinear(q, step)

    def fake_quant(w, scale, bits: int, signed: bool = True, ch_axis: Optional[int] = None):
        # weights only (the frozen model quantizes nothing else with it): per output channel, axis 0; the
        # QuantizeLinear of the constant becomes its integer initializer below, so no Clip is needed
        dtype, _ = storage(bits, signed, fmt)
        q = op.QuantizeLinear(w, scale, axis=0, output_dtype=dtype)
        return op.DequantizeLinear(q, scale, axis=0)

    def deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation, groups: int, offset_groups: int):
        # ONNX DeformConv (opset 19): same offset layout ((dy, dx) per tap) and mask; onnxruntime runs it on the CPU
        kh, kw = weight.shape[-2], weight.shape[-1]
        args = [x, weight, offset] + ([bias] if bias is not None else [op.Constant(value_floats=[0.0] * weight.shape[0])])
        return op.DeformConv(*args, mask, kernel_shape=[kh, kw], strides=list(stride), dilations=list(dilation),
                             pads=[padding[0], padding[1], padding[0], padding[1]], group=groups,
                             offset_group=offset_groups)

    return {torch.ops.selfocus.act_quant.default: act_quant, torch.ops.selfocus.fake_quant.default: fake_quant,
            torch.ops.selfocus.deform_conv2d.default: deform_conv2d}


def trace(frozen: torch.nn.Module, example: torch.Tensor, output_names: Sequence[str], fmt: str,
          dynamic_batch: bool = True):
    """The exporter's ModelProto of ``frozen`` (input ``images``, outputs ``output_names``)."""
    require_onnx()
    kwargs = dict(dynamo=True, opset_version=OPSET, optimize=False, verbose=False, input_names=["images"],
                  output_names=list(output_names), custom_translation_table=_translations(fmt))
    if dynamic_batch:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(frozen, (example,), **kwargs)
        except Exception as exc:  # the exporter's errors name the failing node; keep the first lines
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            where = next((ln for ln in lines if "Error when translating node" in ln or "node" in ln), lines[0] if lines else "")
            raise ExportError(f"the exporter could not translate the model: {type(exc).__name__}: {where[:500]}") from exc
    return program.model_proto


def _initializers(model) -> dict:
    return {t.name: t for t in model.graph.initializer}


def store_integer_weights(model) -> int:
    """Each QuantizeLinear of a float initializer becomes that initializer's integers (same output name)."""
    import onnx
    from onnx import numpy_helper

    inits = _initializers(model)
    producers_removed = 0
    for node in list(model.graph.node):
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        axis = attrs.get("axis", 1)
        if scale.ndim == 1 and w.ndim > 1:
            shape = [1] * w.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
        levels = w / scale
        ints = np.rint(levels)
        if np.abs(levels - ints).max(initial=0.0) > 1e-3:
            raise ExportError(f"weight {node.input[0]!r} is not on its quantization grid (frozen export expected)")
        dtype = attrs["output_dtype"]
        np_dtype = onnx.helper.tensor_dtype_to_np_dtype(dtype)
        info = np.iinfo(np.int8) if dtype in (onnx.TensorProto.INT4, onnx.TensorProto.INT8) else None
        if dtype == onnx.TensorProto.INT4:
            lo, hi = -8, 7
        elif info is not None:
            lo, hi = info.min, info.max
        else:
            raise ExportError(f"weight {node.input[0]!r}: unexpected storage type {dtype}")
        if ints.min(initial=0) < lo or ints.max(initial=0) > hi:
            raise ExportError(f"weight {node.input[0]!r}: integers outside [{lo}, {hi}]")
        model.graph.initializer.append(numpy_helper.from_array(ints.astype(np_dtype), node.output[0]))
        model.graph.node.remove(node)
        producers_removed += 1
    return producers_removed


def quantize_biases(model) -> Tuple[int, List[str]]:
    """Conv/Gemm biases to int32 with scale (input step x weight scale) behind a DequantizeLinear, where the
    input and the weight come from DequantizeLinear nodes. Returns (count, layers kept in float because the
    integers would overflow int32)."""
    from onnx import helper, numpy_helper

    inits = _initializers(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    done, kept = 0, []
    converted: Dict[str, str] = {}  # a layer called several times (SCNN's message passing) shares its bias
    for node in list(model.graph.node):
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in inits:
            continue
        a, w = producer.get(node.input[0]), producer.get(node.input[1])
        if node.input[1] in inits:  # integer weights feed their DequantizeLinear; the Gemm/Conv reads its output
            continue
        if not (a is not None and w is not None and a.op_type == "DequantizeLinear" and w.op_type == "DequantizeLinear"):
            continue
        if node.op_type == "Gemm" and any(at.name == "transB" and at.i == 0 for at in node.attribute):
            continue
        step = numpy_helper.to_array(inits[a.input[1]]).astype(np.float32)
        wscale = numpy_helper.to_array(inits[w.input[1]]).astype(np.float32)
        bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        if step.size != 1:
            continue
        scale = (step.reshape(()) * wscale).astype(np.float32)
        ints = np.rint(bias / scale.astype(np.float64))
        if np.abs(ints).max(initial=0) > INT32_MAX:
            kept.append(node.name)
            continue
        base = node.input[2]
        if base in converted:
            node.input[2] = converted[base]
            done += 1
            continue
        model.graph.initializer.append(numpy_helper.from_array(ints.astype(np.int32), f"{base}.int32"))
        model.graph.initializer.append(numpy_helper.from_array(scale, f"{base}.int32_scale"))
        dq = helper.make_node("DequantizeLinear", [f"{base}.int32", f"{base}.int32_scale"], [f"{base}.dequantized"],
                              name=f"{base}.dequantize", axis=0)
        model.graph.node.insert(list(model.graph.node).index(node), dq)
        node.input[2] = converted[base] = f"{base}.dequantized"
        done += 1
    return done, kept


def drop_unused_initializers(model) -> None:
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for t in list(model.graph.initializer):
        if t.name not in used:
            model.graph.initializer.remove(t)


def finish(model, fmt: str, bias: str, metadata: Dict[str, str]) -> Dict[str, object]:
    """Integer weights, int32 biases (``bias="int32"``), clean-up, metadata and the ONNX checker."""
    import onnx

    if bias not in BIASES:
        raise ExportError(f"bias: expected one of {', '.join(BIASES)}, got {bias!r}")
    weights = store_integer_weights(model)
    biases, kept = quantize_biases(model) if bias == "int32" else (0, [])
    drop_unused_initializers(model)
    for k, v in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, str(v)
    onnx.checker.check_model(model, full_check=True)
    return dict(integer_weights=weights, int32_biases=biases, float_biases_kept=kept)
