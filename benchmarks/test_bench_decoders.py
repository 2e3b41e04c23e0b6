"""Batched C++ decoders against the Python reference decoders: 256 images' head outputs per call.

Head outputs are the training targets of 256 generated scenes with noise added (2-4 lanes per image, the
workload of decoding a real model's outputs), the same tensors for both implementations.
"""
import pytest
import torch

from selfocus_ext import models
from selfocus_ext.models.targets import build_trainset

NAMES = ["ganet-s", "laneatt-s", "bezier-s", "scnn-s"]


@pytest.fixture(scope="module")
def slots():
    return build_trainset(256, 3, models.DEFAULT_INPUT, cache=False)["slots"]


def outputs(name, m, slots):
    from selfocus_ext.testing.head_oracle import outputs_from_targets as _oracle

    out = _oracle(name, m, m.targets(slots))
    g = torch.Generator().manual_seed(0)
    return {k: v + 0.1 * v.std().clamp(min=1e-3) * torch.randn(v.shape, generator=g) for k, v in out.items()}


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("name", NAMES)
def test_decode_256(benchmark, name, impl, slots):
    m = models.build(name)
    out = outputs(name, m, slots)
    fn = (lambda: m.decode(out)) if impl == "fused" else (lambda: m.decode_reference(out))
    benchmark.group = f"decode {name} | 256 images"
    benchmark.extra_info.update(op=f"decode {name} (images)", impl=impl, mode="items", n=256, bytes=0)
    benchmark.pedantic(fn, rounds=10 if impl == "fused" else 2, iterations=1, warmup_rounds=1)
