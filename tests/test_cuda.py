"""CUDA implementations equal the CPU implementations (skipped without a CUDA build and a GPU)."""
import pytest
import torch

from selfocus_ext import act_quant, adaround_init, adaround_quant, adaround_quant_ste, adaround_regularizer, fake_quant, qdrop_mask

from conftest import requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def on(device, t, dtype=None):
    t = t.detach().to(device)
    return t.to(dtype) if dtype is not None else t


def cpu_result(fn, *tensors, dtype):
    """The CPU result on the same (rounded) inputs, computed in float32 and rounded to dtype."""
    return fn(*[t.to(dtype).float() for t in tensors]).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ch_axis,shape", [(None, (1001,)), (1, (5, 12, 7)), (1, (5, 12, 8)), (0, (6, 33)), (-1, (4, 9))])
def test_fake_quant(gen, dtype, ch_axis, shape):
    x = torch.randn(shape, generator=gen) * 3
    scale = torch.rand(shape[ch_axis] if ch_axis is not None else 1, generator=gen) * 0.2 + 0.01
    sc = scale if ch_axis is not None else scale.reshape(())
    y_gpu = fake_quant(on("cuda", x, dtype), on("cuda", sc), 4, True, ch_axis)
    y_cpu = cpu_result(lambda a: fake_quant(a, sc, 4, True, ch_axis), x, dtype=dtype)
    assert y_gpu.dtype == dtype
    assert torch.equal(y_gpu.cpu(), y_cpu)
    # gradient: straight-through mask
    xg = on("cuda", x, dtype).requires_grad_(True)
    g = torch.randn(shape, generator=gen)
    fake_quant(xg, on("cuda", sc), 4, True, ch_axis).backward(on("cuda", g, dtype))
    xc = x.to(dtype).float().requires_grad_(True)
    fake_quant(xc, sc, 4, True, ch_axis).backward(g.to(dtype).float())
    assert torch.equal(xg.grad.cpu(), xc.grad.to(dtype))


def test_misaligned_and_odd_sizes(gen):
    base = torch.randn(4099, generator=gen)
    for offset in (1, 2, 3):
        view_cpu = base[offset:]
        view_gpu = base.cuda()[offset:]
        assert torch.equal(fake_quant(view_gpu, 0.05, 4).cpu(), fake_quant(view_cpu, 0.05, 4))
        assert torch.equal(act_quant(view_gpu, 0.05, 4, True, 0.5, 3).cpu(), act_quant(view_cpu, 0.05, 4, True, 0.5, 3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_adaround(gen, dtype, bits):
    w = torch.randn(16, 8, 3, 3, generator=gen) * 0.2
    scale = w.abs().reshape(16, -1).amax(1) / (2 ** (bits - 1) - 1)
    v = torch.randn(w.shape, generator=gen) * 2
    wd, vd = w.to(dtype).float(), v.to(dtype).float()
    hard_gpu = adaround_quant(on("cuda", w, dtype), on("cuda", v, dtype), scale.cuda(), bits, hard=True)
    assert torch.equal(hard_gpu.cpu(), adaround_quant(wd, vd, scale, bits, hard=True).to(dtype))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-3)
    vg = on("cuda", v, dtype).requires_grad_(True)
    soft_gpu = adaround_quant(on("cuda", w, dtype), vg, scale.cuda(), bits)
    g = torch.randn(w.shape, generator=gen)
    soft_gpu.backward(on("cuda", g, dtype))
    vc = vd.clone().requires_grad_(True)
    soft_cpu = adaround_quant(wd, vc, scale, bits)
    soft_cpu.backward(g.to(dtype).float())
    torch.testing.assert_close(soft_gpu.float().cpu(), soft_cpu.to(dtype).float(), **tol)
    torch.testing.assert_close(vg.grad.float().cpu(), vc.grad.to(dtype).float(), **tol)
    # the fused hard forward: the hard value exactly, the soft gradient
    vs = on("cuda", v, dtype).requires_grad_(True)
    ste_gpu = adaround_quant_ste(on("cuda", w, dtype), vs, scale.cuda(), bits)
    assert torch.equal(ste_gpu.detach(), hard_gpu)
    ste_gpu.backward(on("cuda", g, dtype))
    assert torch.equal(vs.grad, vg.grad)
    torch.testing.assert_close(adaround_init(on("cuda", w, dtype), scale.cuda(), bits).float().cpu(),
                               adaround_init(wd, scale, bits).to(dtype).float(), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_regularizer(gen, dtype):
    v = torch.randn(100003, generator=gen) * 2
    vg = on("cuda", v, dtype).requires_grad_(True)
    r_gpu = adaround_regularizer(vg, 6.0)
    r_gpu.backward()
    vc = v.to(dtype).float().requires_grad_(True)
    r_cpu = adaround_regularizer(vc, 6.0)
    r_cpu.backward()
    torch.testing.assert_close(r_gpu.float().cpu(), r_cpu.to(dtype).float(), rtol=1e-4 if dtype == torch.float32 else 1e-2, atol=1e-3)
    torch.testing.assert_close(vg.grad.float().cpu(), vc.grad.to(dtype).float(), rtol=1e-3, atol=1e-3 if dtype != torch.float32 else 1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep_prob", [1.0, 0.5])
def test_act_quant(gen, dtype, keep_prob):
    x = torch.randn(3, 40001, generator=gen) * 2
    step = torch.tensor(0.2)
    xg = on("cuda", x, dtype).requires_grad_(True)
    sg = step.cuda().requires_grad_(True)
    y_gpu = act_quant(xg, sg, 4, True, keep_prob, 77, 0.5)
    g = torch.randn(x.shape, generator=gen)
    y_gpu.backward(on("cuda", g, dtype))
    xc = x.to(dtype).float().requires_grad_(True)
    sc = step.clone().requires_grad_(True)
    y_cpu = act_quant(xc, sc, 4, True, keep_prob, 77, 0.5)
    y_cpu.backward(g.to(dtype).float())
    assert torch.equal(y_gpu.cpu(), y_cpu.to(dtype))
    assert torch.equal(xg.grad.cpu(), xc.grad.to(dtype))
    torch.testing.assert_close(sg.grad.cpu(), sc.grad, rtol=1e-4, atol=1e-3)


def test_qdrop_mask_same_on_both():
    x = torch.zeros(3, 1001)
    assert torch.equal(qdrop_mask(x.cuda(), 0.4, 5).cpu(), qdrop_mask(x, 0.4, 5))


def test_empty_on_cuda():
    x = torch.empty(0, 4, device="cuda", requires_grad=True)
    s = torch.tensor(0.1, device="cuda", requires_grad=True)
    act_quant(x, s, 4, True, 0.5, 1).sum().backward()
    assert s.grad.item() == 0.0
    assert fake_quant(x, 0.1, 4).shape == x.shape
    assert adaround_regularizer(torch.empty(0, device="cuda"), 2.0).item() == 0.0


def test_device_mismatch_is_an_error():
    x = torch.randn(10, device="cuda")
    with pytest.raises(RuntimeError, match="fake_quant: scale is on cpu but x is on cuda"):
        fake_quant(x, torch.tensor(0.1), 4)
    with pytest.raises(RuntimeError, match="act_quant: step must be positive, finite"):
        act_quant(x, torch.tensor(-1.0, device="cuda"), 4, True)


def test_opcheck_cuda(gen):
    x = torch.randn(4, 33, generator=gen).cuda().requires_grad_(True)
    w = (torch.randn(8, 4, 3, 3, generator=gen) * 0.2).cuda()
    s_w = w.abs().reshape(8, -1).amax(1) / 7
    ops = torch.ops.selfocus
    torch.library.opcheck(ops.fake_quant.default, (x, torch.tensor(0.1, device="cuda"), 4, True, None))
    torch.library.opcheck(ops.adaround_quant.default, (w, torch.randn_like(w).requires_grad_(True), s_w, 4, False))
    torch.library.opcheck(ops.adaround_quant_ste.default, (w, torch.randn_like(w).requires_grad_(True), s_w, 4))
    torch.library.opcheck(ops.act_quant.default,
                          (x, torch.tensor(0.2, device="cuda", requires_grad=True), 4, True, 0.5, 3, 1.0))
    torch.library.opcheck(ops.adaround_regularizer.default, (torch.randn(50, device="cuda", requires_grad=True), 4.0, True))


def test_lane_distortion_cuda_equals_cpu():
    import numpy as np

    from selfocus_ext.lanes import distortion_score

    rng = np.random.default_rng(0)
    ys = torch.arange(590.0, 270.0, -10.0)
    base = torch.from_numpy((rng.uniform(200, 1400, (50, 4, 1)) + rng.uniform(-2, 2, (50, 4, 1)) * (590 - ys.numpy())).astype("float32"))
    base[:, 3, 20:] = float("nan")
    pert = base[None] + torch.randn(8, *base.shape) * torch.linspace(0.5, 20, 8)[:, None, None, None]
    pert[torch.rand(pert.shape) < 0.03] = float("nan")
    cpu = distortion_score(base, pert, ys)
    gpu = distortion_score(base.cuda(), pert.cuda(), ys.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-4)
    torch.library.opcheck(torch.ops.selfocus.lane_distortion.default, (base.cuda(), pert.cuda(), ys.cuda(), 30.0, 1.0, 0.5))


@pytest.mark.parametrize("name", ["ganet-s", "laneatt-s", "bezier-s", "scnn-s", "resa-s", "lstr-s", "condlane-s"])
def test_decoders_cuda_equal_cpu(name):
    """The CUDA decoders (one thread per image, csrc/core/decoders/) give the CPU's LaneSets, also
    with the Monte-Carlo dimension."""
    from selfocus_ext import models
    from selfocus_ext.data.datasets import calibration_images

    m = models.load(name)
    x = calibration_images(24, seed=9)
    with torch.no_grad():
        out = m(x)
    head = m.heads[-1].output_key
    g = torch.Generator().manual_seed(0)
    noisy = {**out, head: out[head][None] + 0.3 * out[head].std() * torch.randn((5,) + tuple(out[head].shape), generator=g)}
    for case in (out, noisy):
        cpu = m.decode(case)
        gpu = m.decode({k: v.cuda() for k, v in case.items()})
        cx, cs = (cpu.xs, cpu.scores) if hasattr(cpu, "xs") else cpu
        gx, gs = (gpu.xs, gpu.scores) if hasattr(gpu, "xs") else gpu
        assert gx.is_cuda
        # same lanes; x within float rounding (the device's hypotf and the host's may differ by an ulp)
        torch.testing.assert_close(gx.cpu(), cx, rtol=0, atol=1e-3, equal_nan=True)
        torch.testing.assert_close(gs.cpu(), cs, rtol=0, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", ["scnn-s", "resa-s"])
def test_segmentation_decoder_cuda_is_exact_on_saturated_maps(name):
    """SCNN's CUDA decoder (a block per item) blurs to the CPU op's bits: on saturated maps, where the row
    maxima are decided in the last bits of the box filter, both choose the same columns (x atol 0)."""
    from selfocus_ext import models

    m = models.load(name)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 6, 5, 20, 50, generator=g) * 12  # a Monte-Carlo dimension of 2 over 6 images
    lane = torch.randn(2, 6, 4, generator=g) * 3
    out = {"out": logits, "lane": lane}
    cx, cs = m.decode(out)  # with a Monte-Carlo dimension: (xs, scores)
    gx, gs = m.decode({k: v.cuda() for k, v in out.items()})
    assert int((cs > 0).sum()) > 10
    torch.testing.assert_close(gx.cpu(), cx, rtol=0, atol=0, equal_nan=True)
    # the scores are the lanes' existence probabilities, from ATen's sigmoid on each device (1 ulp apart)
    torch.testing.assert_close(gs.cpu(), cs, rtol=0, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("family", ["pad-lstr", "pad-bezier", "pad-segmentation", "resa-official", "clrnet",
                                    "laneatt-pad", "laneatt-official", "ganet-published", "condlane-published"])
def test_published_decoders_cuda_equal_cpu(family):
    """The published families' CUDA kernels (one thread per image) against the CPU op, with a Monte-Carlo
    dimension: the same per-image code, so the same lanes (splines to float64 rounding: 1e-3 px)."""
    import test_published_native_decoders as T
    from selfocus_ext.decoders import build_decoder
    from selfocus_ext.models import registry
    from selfocus_ext.models.published.clrnet import CLRNET_INPUT
    from selfocus_ext.models.published.segmentation import CULANE_INPUT, RESA_INPUT

    if family.startswith("laneatt"):
        model = registry.build("laneatt-r18")
        inputs = model.decoder_inputs()
        if family == "laneatt-official":
            inputs = dict(inputs, length_adds_start_x=0.0, official=True)
        decoder = build_decoder("laneatt-published", model.model_input, **inputs)
        heads = T.laneatt_heads(3, decoder.anchors.shape[0])
        noisy_key = "reg"
    elif family in ("ganet-published", "condlane-published"):
        import test_published_keypoint_decoders as K
        from selfocus_ext.models.published.condlane import MMDET_CULANE_INPUT

        decoder = build_decoder(family, MMDET_CULANE_INPUT)
        heads = (K.ganet_heads if family == "ganet-published" else K.condlane_heads)(3)
        noisy_key = "pts_offset" if family == "ganet-published" else "params"
    else:
        mi = {"clrnet": CLRNET_INPUT, "resa-official": RESA_INPUT}.get(family, CULANE_INPUT)
        decoder = build_decoder(family, mi)
        heads = {"pad-lstr": T.lstr_heads, "pad-bezier": T.bezier_heads, "clrnet": T.clrnet_heads}.get(
            family, T.segmentation_heads)(3)
        noisy_key = {"pad-lstr": "curves", "pad-bezier": "curves", "clrnet": "lanes"}.get(family, "out")
    noisy = dict(heads)
    noisy[noisy_key] = heads[noisy_key].unsqueeze(0) + 0.01 * torch.randn((4,) + tuple(heads[noisy_key].shape))
    cpu_xs, cpu_scores = decoder(noisy)
    gpu_xs, gpu_scores = decoder({k: v.cuda() for k, v in noisy.items()})
    torch.testing.assert_close(gpu_xs.cpu(), cpu_xs, rtol=0, atol=1e-3, equal_nan=True)
    torch.testing.assert_close(gpu_scores.cpu(), cpu_scores, rtol=0, atol=0, equal_nan=True)
