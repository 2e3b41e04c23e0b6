"""Calibration cost: the vectorised per-channel MSE search against a channel-by-channel loop on the same
weights, and a full calibration of a zoo model on 512 images."""
import warnings

import pytest
import torch

from selfocus_ext import models
from selfocus_ext.quant import calibrate, quantize_model
from selfocus_ext.testing.composites import mse_search_loop
from selfocus_ext.quant.observers import mse_search


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_per_channel_mse_search(benchmark, impl):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(96, 96 * 9, generator=g)  # a 3x3 conv with 96 in and out channels
    fn = (lambda: mse_search(w, 4, True)) if impl == "fused" else (lambda: mse_search_loop(w, 4, True))
    benchmark.group = "per-channel MSE search | 96 channels x 864"
    benchmark.extra_info.update(op="OMSE per-channel search (channels)", impl=impl, mode="items", n=96, bytes=0)
    benchmark.pedantic(fn, rounds=5 if impl == "fused" else 1, iterations=1, warmup_rounds=1 if impl == "fused" else 0)


@pytest.mark.parametrize("method", ["omse", "aciq"])
def test_calibrate_ganet_512(benchmark, method):
    from selfocus_ext.data import calibration_images

    images = calibration_images(512, seed=1)
    m = models.load("ganet-s")

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = quantize_model(m, "w4a4", weight_observer=method, act_observer="ema_mse" if method == "omse" else "aciq")
        calibrate(q, images)

    benchmark.group = f"calibration ganet-s 512 images | {method}"
    benchmark.extra_info.update(op=f"calibrate ganet-s W4A4 {method} (images)", impl="fused", mode="items", n=512, bytes=0)
    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
