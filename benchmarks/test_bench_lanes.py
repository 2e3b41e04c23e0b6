"""Throughput of the lane kernels against plain-Python references, in the same run.

- Lane Distortion Score: 100 images x 8 noise levels x 20 reruns = 16,000 scored pairs (4 lanes, 32 rows),
  the Monte-Carlo batch of one head's noise-score curve; reference: numpy + scipy's linear_sum_assignment.
- CULane metric: per-image matching of 200 images; reference: OpenCV drawing + scipy matching
  (selfocus_ext/metrics/culane_reference.py). Both produce the same counts (checked here too).
"""
import numpy as np
import pytest
import torch

from selfocus_ext.metrics import culane
from selfocus_ext.lanes import distortion_score
from selfocus_ext.lanes import reference as lds_reference

ROWS = 32
YS = np.arange(590, 590 - 10 * ROWS, -10, dtype=np.float32)


def mc_batch(images=100, levels=8, reruns=20, lanes=4, seed=0):
    rng = np.random.default_rng(seed)
    base = (rng.uniform(200, 1400, (images, lanes, 1)) + rng.uniform(-2, 2, (images, lanes, 1)) * (590 - YS)).astype(np.float32)
    for b in range(images):
        base[b, lanes - 1, ROWS - int(rng.integers(0, ROWS // 2)):] = np.nan
    sigma = np.repeat(np.geomspace(0.5, 40, levels), reruns).astype(np.float32)  # [levels * reruns]
    pert = base[None] + sigma[:, None, None, None] * rng.normal(0, 1, (levels * reruns,) + base.shape).astype(np.float32)
    return base, pert


def run(benchmark, fn, *, op, impl, n, rounds):
    benchmark.group = f"{op} | n={n}"
    benchmark.extra_info.update(op=op, impl=impl, mode="items", n=n, bytes=0)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if impl == "fused" else 0)


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_distortion_score_mc(benchmark, impl):
    base, pert = mc_batch()
    n = pert.shape[0] * pert.shape[1]
    if impl == "fused":
        b, p, y = torch.from_numpy(base), torch.from_numpy(pert), torch.from_numpy(YS)
        out = run(benchmark, lambda: distortion_score(b, p, y), op="lane distortion score (pairs)", impl=impl, n=n, rounds=20)
        assert out.shape == (160, 100)
    else:
        run(benchmark, lambda: lds_reference.distortion_score(base, pert, YS), op="lane distortion score (pairs)",
            impl=impl, n=n, rounds=1)


def culane_images(count=200, seed=1):
    rng = np.random.default_rng(seed)

    def lane():
        k = int(rng.integers(10, 30))
        ys = np.arange(590, 590 - 10 * k, -10, dtype=np.float32)
        t = 590 - ys
        xs = rng.uniform(100, 1500) + rng.uniform(-2, 2) * t + rng.uniform(-0.002, 0.002) * t * t
        return np.stack([xs, ys], 1).astype(np.float32)

    gts = [[lane() for _ in range(rng.integers(2, 5))] for _ in range(count)]
    preds = [[l + np.array([rng.normal(0, 10), 0], np.float32) for l in g] + ([lane()] if rng.uniform() < 0.3 else []) for g in gts]
    return preds, gts


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_culane_metric(benchmark, impl):
    pytest.importorskip("cv2")
    from selfocus_ext.metrics import culane_reference

    preds, gts = culane_images()
    if impl == "fused":
        matches = run(benchmark, lambda: culane.match_images(preds, gts), op="CULane metric (images)", impl=impl,
                      n=len(gts), rounds=5)
        assert [m.counts() for m in matches] == culane_reference.evaluate(preds, gts)
    else:
        run(benchmark, lambda: culane_reference.evaluate(preds, gts), op="CULane metric (images)", impl=impl,
            n=len(gts), rounds=1)
