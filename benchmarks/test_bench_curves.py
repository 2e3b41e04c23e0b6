"""Noise-score curve building (Sensitivity Aware Selection's one-off cost): all heads of each zoo model at
the paper's sizes (100 images, 8 noise levels, 20 reruns), batched through the Monte-Carlo decoders and
distortion score, against the same curves built one noisy copy at a time."""
import os

import pytest

from selfocus_ext import models
from selfocus_ext.models import registry
from selfocus_ext.data.datasets import calibration_images
from selfocus_ext.recon import build_curves
from selfocus_ext.recon.curves import head_outputs


@pytest.fixture(scope="module")
def images():
    return calibration_images(100, seed=7)


@pytest.mark.parametrize("name", ["ganet-s", "laneatt-s", "bezier-s", "scnn-s"])
@pytest.mark.parametrize("path", ["batched", "per-copy"])
def test_curves(benchmark, images, name, path):
    model = models.load(name)
    outputs = head_outputs(model, images)
    model.supports_monte_carlo = path == "batched"
    benchmark.group = f"curves {name}"
    # in the summary table: "fused" = batched, "reference" = one copy at a time; items = decoded copies
    benchmark.extra_info.update(op=f"curves {name} (decoded copies)", impl="fused" if path == "batched" else "reference",
                                mode="items", n=len(model.heads) * 8 * 20 * 100, bytes=0)
    curves = benchmark.pedantic(build_curves, args=(model, images), kwargs=dict(outputs=outputs, progress=False),
                                rounds=1, iterations=1)
    assert set(curves) == {h.name for h in model.heads}


ZOO = [f"{f}-{s}" for s in "sm" for f in ("ganet", "condlane", "laneatt", "bezier", "lstr", "scnn", "resa")]


@pytest.mark.parametrize("name", [n for n in ZOO if os.path.isfile(registry.weights_path(n))])
def test_curves_forward_included(benchmark, images, name):
    """The whole stage as the tune command runs it: FP forward of the 100 images, then every head's curve
    (goal: under 10 s for any zoo model on the 2-core machine)."""
    model = models.load(name)
    benchmark.group = f"curves {name}"
    benchmark.extra_info.update(op=f"curves {name} incl. FP forward (decoded copies)", impl="fused", mode="items",
                                n=len(model.heads) * 8 * 20 * 100, bytes=0)
    benchmark.pedantic(build_curves, args=(model, images), kwargs=dict(progress=False), rounds=1, iterations=1)
