"""The batched C++ decoders against the Python reference decoders."""
import numpy as np
import pytest
import torch

from selfocus_ext import models
from selfocus_ext.models.targets import build_trainset

from selfocus_ext.testing.head_oracle import outputs_from_targets as _oracle

NAMES = ["ganet-s", "laneatt-s", "bezier-s", "scnn-s", "resa-s", "lstr-s", "condlane-s"]


@pytest.fixture(scope="module")
def data():
    return build_trainset(16, 7, models.DEFAULT_INPUT, cache=False)


def perturbed(out, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: v + scale * torch.randn(v.shape, generator=g) * v.std().clamp(min=1e-3) for k, v in out.items()}


def assert_same_lanes(a, b, atol, name):
    pa, pb = a.present(), b.present()
    assert torch.equal(pa, pb), f"{name}: different lanes found"
    xa, xb = a.xs[pa], b.xs[pb]
    assert torch.equal(torch.isnan(xa), torch.isnan(xb)), f"{name}: different rows covered"
    ok = ~torch.isnan(xa)
    if ok.any():
        diff = (xa[ok] - xb[ok]).abs()
        assert float(diff.max()) <= atol, f"{name}: max |dx| {float(diff.max())}"


def candidates(name, m, data):
    t = m.targets(data["slots"])
    oracle = _oracle(name, m, t)
    torch.manual_seed(0)
    with torch.no_grad():
        raw = m.eval()(m.model_input.normalize(data["images"]))
    return {"oracle": oracle, "noisy": perturbed(oracle, 0.3, 1), "untrained": raw}


@pytest.mark.parametrize("name", NAMES)
def test_cpp_equals_reference(name, data):
    m = models.build(name)
    atol = 1e-2
    for kind, out in candidates(name, m, data).items():
        cpp = m.decode(out)
        ref = m.decode_reference(out)
        assert_same_lanes(cpp, ref, atol, f"{name}/{kind}")


@pytest.mark.parametrize("name", NAMES)
def test_monte_carlo_shape(name, data):
    m = models.build(name)
    out = _oracle(name, m, m.targets(data["slots"][:6]))
    head = m.heads[-1].output_key  # a semantic head: K noisy copies, the other heads shared
    k = 3
    noisy = torch.stack([perturbed({head: out[head]}, 0.2 * (i + 1), 10 + i)[head] for i in range(k)])
    xs, scores = m.decode({**out, head: noisy})
    assert xs.shape[:2] == (k, 6)
    for i in range(k):
        single = m.decode({**out, head: noisy[i]})
        assert torch.equal(torch.isnan(xs[i]), torch.isnan(single.xs))
        assert torch.allclose(torch.nan_to_num(xs[i]), torch.nan_to_num(single.xs))


def trained_outputs(seed):
    """(name, model, head outputs on 32 generated scenes) for every shipped model."""
    import os

    from selfocus_ext.models import registry

    for name in NAMES:
        if not os.path.isfile(registry.weights_path(name)):
            continue
        m = models.load(name)
        d = build_trainset(32, seed, m.model_input, cache=False)
        with torch.no_grad():
            yield name, m, m(m.model_input.normalize(d["images"]))


def test_trained_model_outputs():
    for name, m, out in trained_outputs(11):
        assert_same_lanes(m.decode(out), m.decode_reference(out), 1e-2, name)


def test_decoder_bad_input():
    with pytest.raises(RuntimeError, match="decode_ganet: kpts_hm must have 4 dims"):
        torch.ops.selfocus.decode_ganet(torch.zeros(2, 3), torch.zeros(2, 2, 4, 4), torch.zeros(2, 2, 4, 4),
                                        torch.zeros(5), 0.25, 0.5, 270.0, 1640, 8, 0.4, 1.0, 5.0, 4.0, 8)
    with pytest.raises(RuntimeError, match="same batch"):
        torch.ops.selfocus.decode_ganet(torch.zeros(2, 1, 4, 4), torch.zeros(3, 2, 4, 4), torch.zeros(2, 2, 4, 4),
                                        torch.zeros(5), 0.25, 0.5, 270.0, 1640, 8, 0.4, 1.0, 5.0, 4.0, 8)
    with pytest.raises(RuntimeError, match="sample row 500 outside the input height 160"):
        torch.ops.selfocus.decode_scnn(torch.zeros(1, 5, 20, 50), torch.zeros(1, 4), torch.tensor([500], dtype=torch.int32),
                                       torch.zeros(5), 0.25, 0.5, 270.0, 1640, 400, 160, 8, 0.5, 0.3, 9)


# ---- edge workloads: heavy noise, an empty batch, a keypoint plateau --------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_heavy_noise_and_empty_batch(name, data):
    m = models.build(name)
    base = candidates(name, m, data)["oracle"]
    heavy = perturbed(base, 2.0, 5)
    # far-out control points and offsets: float32 sampling differs from numpy's by a few hundredths of a px
    assert_same_lanes(m.decode(heavy), m.decode_reference(heavy), 5e-2, f"{name}/heavy noise")
    empty = m.decode({k: v[:0] for k, v in base.items()})
    assert empty.xs.shape[0] == 0 and empty.scores.shape[0] == 0


def test_ganet_on_a_plateau():
    """Every cell a keypoint (a flat heatmap above threshold): the workspace holds h*w keypoints."""
    m = models.build("ganet-s")
    hm = torch.full((2, 1, 20, 50), 3.0)
    g = torch.Generator().manual_seed(3)
    out = {"kpts_hm": hm, "pts_offset": torch.randn(2, 2, 20, 50, generator=g) * 3,
           "int_offset": torch.rand(2, 2, 20, 50, generator=g) - 0.5}
    assert_same_lanes(m.decode(out), m.decode_reference(out), 1e-2, "ganet plateau")


@pytest.mark.parametrize("name", ["scnn-s", "resa-s"])
def test_segmentation_plateaus_decode_alike(name, data):
    """Saturated probability maps (logits x 30: plateaus of near-equal probability, where a 1-ulp
    difference in the blurred maps would move the arg-max by pixels) give the reference's columns exactly:
    the C++ box filter is OpenCV's to the bit and both upsample with the same float32 formula."""
    m = models.build(name)
    torch.manual_seed(1)
    with torch.no_grad():
        raw = m.eval()(m.model_input.normalize(data["images"]))
    out = {"out": raw["out"] * 30, "lane": torch.full_like(raw["lane"], 3.0)}
    cpp, ref = m.decode(out), m.decode_reference(out)
    assert int(cpp.present().sum()) > 0
    assert_same_lanes(cpp, ref, 0.0, f"{name}/saturated")


def test_scnn_box_filter_is_opencv_to_the_bit():
    """The decoder's blur, seen through the op: one lane map whose row maxima are decided in the last bits."""
    import cv2

    from selfocus_ext.decoders.segmentation import sample_rows, upsample_bilinear

    m = models.build("scnn-s")
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 5, 20, 50, generator=g) * 12
    out = {"out": logits, "lane": torch.full((3, 4), 3.0)}
    W, H = m.model_input.size
    prob = upsample_bilinear(torch.softmax(logits, 1).numpy(), H, W)
    rows = sample_rows(m.model_input)
    for b in range(3):
        for s in range(4):
            line = cv2.blur(prob[b, s + 1], (9, 9))[rows]
            assert line.max() > 0.3  # every sample row has a point: the columns below are all compared
    assert_same_lanes(m.decode(out), m.decode_reference(out), 0.0, "scnn/random saturated")


def test_lstr_keeps_the_four_most_probable_lanes_between_their_ends():
    m = models.build("lstr-s")
    probs = torch.tensor([0.97, 0.999, 0.5, 0.98, 0.996, 0.99, 0.9999])  # six above 0.95
    logits = torch.stack([torch.zeros(7), torch.logit(probs.double()).float()], -1)[None]
    curves = torch.zeros(1, 7, 8)
    curves[0, :, 0], curves[0, :, 1], curves[0, :, 3] = 0.3, 0.9, -1.0  # ends 0.3 .. 0.9, pole above the image
    curves[0, :, 5] = torch.linspace(0.1, 0.9, 7)  # n: query q a vertical line at x = 0.1 + q * 0.133
    out = {"logits": logits, "curves": curves}
    for lanes in (m.decode(out), m.decode_reference(out)):
        present = lanes.present()[0]
        assert int(present.sum()) == 4
        xs = lanes.xs[0][present]
        cols = sorted(round(float(x[~torch.isnan(x)].mean()) / m.model_input.frame.width * 100) for x in xs)
        # queries 1, 4, 5, 6 (the four most probable) at x = 0.233, 0.633, 0.767, 0.9 of the width
        assert cols == [23, 63, 77, 90], cols
        ys = m.model_input.frame.ys
        rows = (~torch.isnan(xs)).any(0).numpy()
        H, top = m.model_input.size[1], m.model_input.crop_top
        inside = (ys[rows] - top) * m.model_input.scale[1] / H
        assert inside.min() > 0.3 - 0.02 and inside.max() < 0.9 + 0.02  # only rows between the lane's ends
