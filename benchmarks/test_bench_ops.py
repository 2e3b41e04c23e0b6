"""Throughput of the fused ops against the composite plain-torch formulations and PyTorch's native ops.

Every benchmark carries extra_info: op, impl (fused / composite / native / copy), mode (fwd / fwd+bwd),
n (elements) and bytes (the bytes the computation must move at minimum, for the memory-floor column).
`python benchmarks/summarize.py bench.json` turns a --benchmark-json file into the results table.
"""
import math

import pytest
import torch

import selfocus_ext as se
from selfocus_ext.testing.composites import adaround_composite, adaround_init_composite, adaround_regularizer_composite, lsq_qdrop_composite

SIZES = [1 << 16, 1 << 20, 1 << 24]
CHANNELS = 256


def rounds_for(n):
    return 40 if n <= 1 << 16 else (15 if n <= 1 << 20 else 9)


def run(benchmark, fn, *, op, impl, mode, n, bytes_per_elem):
    benchmark.group = f"{op} | {mode} | n={n}"
    benchmark.extra_info.update(op=op, impl=impl, mode=mode, n=n, bytes=bytes_per_elem * n)
    # Several warm-up rounds: the first large allocations of a process pay for fresh memory.
    benchmark.pedantic(fn, rounds=rounds_for(n), iterations=1, warmup_rounds=4)


def weights(n):
    w = torch.randn(CHANNELS, n // CHANNELS) * 0.1
    scale = w.abs().amax(dim=1) / 7
    return w, scale


# ------------------------------------------------------------------------------------------------------
# memory reference: a copy into a preallocated tensor (bandwidth) and a fresh clone (allocation included)


@pytest.mark.parametrize("n", SIZES)
def test_copy_preallocated(benchmark, n):
    src, dst = torch.randn(n), torch.empty(n)
    run(benchmark, lambda: dst.copy_(src), op="copy", impl="copy_", mode="fwd", n=n, bytes_per_elem=8)


@pytest.mark.parametrize("n", SIZES)
def test_copy_fresh(benchmark, n):
    src = torch.randn(n)
    run(benchmark, lambda: src.clone(), op="copy", impl="clone", mode="fwd", n=n, bytes_per_elem=8)


# ------------------------------------------------------------------------------------------------------
# fake_quant


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["fused", "native"])
@pytest.mark.parametrize("n", SIZES)
def test_fake_quant_per_channel(benchmark, n, impl, mode):
    w, scale = weights(n)
    zp = torch.zeros(CHANNELS, dtype=torch.int32)
    x = w.clone().requires_grad_(mode == "fwd+bwd")
    g = torch.ones_like(w)
    if impl == "fused":
        f = lambda: se.fake_quant(x, scale, 8, True, 0)  # noqa: E731
    else:
        f = lambda: torch.fake_quantize_per_channel_affine(x, scale, zp, 0, -128, 127)  # noqa: E731
    fn = f if mode == "fwd" else (lambda: f().backward(g))
    run(benchmark, fn, op="fake_quant per-channel", impl=impl, mode=mode, n=n, bytes_per_elem=8 if mode == "fwd" else 20)


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["fused", "native"])
@pytest.mark.parametrize("n", SIZES)
def test_fake_quant_per_tensor(benchmark, n, impl, mode):
    x = torch.randn(n).requires_grad_(mode == "fwd+bwd")
    g = torch.ones(n)
    if impl == "fused":
        f = lambda: se.fake_quant(x, 0.02, 8)  # noqa: E731
    else:
        f = lambda: torch.fake_quantize_per_tensor_affine(x, 0.02, 0, -128, 127)  # noqa: E731
    fn = f if mode == "fwd" else (lambda: f().backward(g))
    run(benchmark, fn, op="fake_quant per-tensor", impl=impl, mode=mode, n=n, bytes_per_elem=8 if mode == "fwd" else 20)


# ------------------------------------------------------------------------------------------------------
# AdaRound


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["fused", "composite"])
@pytest.mark.parametrize("n", SIZES)
def test_adaround_soft(benchmark, n, impl, mode):
    w, scale = weights(n)
    v = se.adaround_init(w, scale, 4).requires_grad_(mode == "fwd+bwd")
    g = torch.ones_like(w)
    if impl == "fused":
        f = lambda: se.adaround_quant(w, v, scale, 4)  # noqa: E731
    else:
        s2, zp = scale.reshape(-1, 1), torch.zeros(CHANNELS, 1)
        f = lambda: adaround_composite(w, v, s2, zp, -8, 7)  # noqa: E731
    fn = f if mode == "fwd" else (lambda: f().backward(g))
    # fwd: read w, v, write y; bwd: read grad, w, v, write grad_v
    run(benchmark, fn, op="adaround_quant soft", impl=impl, mode=mode, n=n, bytes_per_elem=12 if mode == "fwd" else 28)


@pytest.mark.parametrize("impl", ["fused", "composite"])
@pytest.mark.parametrize("n", SIZES)
def test_adaround_hard(benchmark, n, impl):
    w, scale = weights(n)
    v = torch.randn_like(w)
    if impl == "fused":
        fn = lambda: se.adaround_quant(w, v, scale, 4, hard=True)  # noqa: E731
    else:
        s2, zp = scale.reshape(-1, 1), torch.zeros(CHANNELS, 1)
        fn = lambda: adaround_composite(w, v, s2, zp, -8, 7, hard=True)  # noqa: E731
    run(benchmark, fn, op="adaround_quant hard", impl=impl, mode="fwd", n=n, bytes_per_elem=12)


@pytest.mark.parametrize("impl", ["fused", "composite"])
@pytest.mark.parametrize("n", SIZES)
def test_adaround_init(benchmark, n, impl):
    w, scale = weights(n)
    if impl == "fused":
        fn = lambda: se.adaround_init(w, scale, 4)  # noqa: E731
    else:
        s2 = scale.reshape(-1, 1)
        fn = lambda: adaround_init_composite(w, s2)  # noqa: E731
    run(benchmark, fn, op="adaround_init", impl=impl, mode="fwd", n=n, bytes_per_elem=8)


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["fused", "composite"])
@pytest.mark.parametrize("n", SIZES)
def test_adaround_regularizer(benchmark, n, impl, mode):
    v = torch.randn(n).requires_grad_(mode == "fwd+bwd")
    if impl == "fused":
        f = lambda: se.adaround_regularizer(v, 8.0)  # noqa: E731
    else:
        f = lambda: adaround_regularizer_composite(v, 8.0)  # noqa: E731
    fn = f if mode == "fwd" else (lambda: f().backward())
    # fused fwd+bwd: one pass reading v, writing dv; the backward scales dv by the incoming gradient
    run(benchmark, fn, op="adaround_regularizer", impl=impl, mode=mode, n=n, bytes_per_elem=4 if mode == "fwd" else 16)


# ------------------------------------------------------------------------------------------------------
# LSQ / QDrop activation quantization


@pytest.mark.parametrize("keep_prob", [1.0, 0.5])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", ["fused", "composite"])
@pytest.mark.parametrize("n", SIZES)
def test_act_quant(benchmark, n, impl, mode, keep_prob):
    grad = mode == "fwd+bwd"
    x = torch.randn(n).requires_grad_(grad)
    step = torch.tensor(0.05, requires_grad=grad)
    g = torch.ones(n)
    gs = 1.0 / math.sqrt(n * 7)
    if impl == "fused":
        counter = iter(range(1 << 62))
        f = lambda: se.act_quant(x, step, 4, True, keep_prob, next(counter), gs)  # noqa: E731
    else:
        zp = torch.tensor(0.0)
        f = lambda: lsq_qdrop_composite(x, step, zp, -8, 7, keep_prob, gs)  # noqa: E731
    fn = f if mode == "fwd" else (lambda: f().backward(g))
    name = "act_quant QDrop p=0.5" if keep_prob < 1 else "act_quant LSQ"
    run(benchmark, fn, op=name, impl=impl, mode=mode, n=n, bytes_per_elem=8 if mode == "fwd" else 20)


@pytest.mark.parametrize("impl", ["fused", "native"])
@pytest.mark.parametrize("n", SIZES)
def test_act_quant_vs_native_learnable(benchmark, n, impl):
    x = torch.randn(n).requires_grad_(True)
    step = torch.tensor([0.05], requires_grad=True)
    zp = torch.tensor([0.0])
    g = torch.ones(n)
    if impl == "fused":
        fn = lambda: se.act_quant(x, step, 8, True).backward(g)  # noqa: E731
    else:
        fn = lambda: torch._fake_quantize_learnable_per_tensor_affine(x, step, zp, -128, 127, 1.0).backward(g)  # noqa: E731
    run(benchmark, fn, op="act_quant LSQ vs torch learnable", impl=impl, mode="fwd+bwd", n=n, bytes_per_elem=20)
