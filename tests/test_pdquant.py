"""PD-Quant's pieces: the prediction-difference loss against hand-computed values, the BatchNorm statistics
read back through folded layers, the distribution correction, and the method inside the engine."""
import math

import pytest
import torch
from torch import nn

from selfocus_ext.models.base import HeadSpec
from selfocus_ext.quant import calibrate, quant_layers, quantize_model
from selfocus_ext.recon import Reconstructor, get_budget, get_method
from selfocus_ext.recon.pdquant import (BatchNormStatistics, bernoulli_kl, correct_inputs, float_after,
                                        frozen_except, head_logit, prediction_difference)
from selfocus_ext.recon.state import quantization_disabled


def test_bernoulli_kl_hand_computed():
    # p_fp = sigmoid(0) = 1/2, p_q = sigmoid(ln 3) = 3/4: KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    fp, q = torch.tensor([0.0]), torch.tensor([math.log(3.0)])
    assert float(bernoulli_kl(fp, q, 1.0)) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    # the temperature divides the logits
    assert float(bernoulli_kl(2 * fp, 2 * q, 2.0)) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    # mean over cells; zero for equal logits; finite for huge logits
    two = bernoulli_kl(torch.tensor([0.0, 5.0]), torch.tensor([math.log(3.0), 5.0]), 1.0)
    assert float(two) == pytest.approx(0.25 * math.log(4 / 3), rel=1e-6)
    assert float(bernoulli_kl(torch.full((3,), 80.0), torch.full((3,), -80.0), 1.0)) == pytest.approx(80.0, rel=1e-4)
    with pytest.raises(ValueError, match="shapes"):
        bernoulli_kl(torch.zeros(2), torch.zeros(3), 1.0)


def test_two_class_softmax_head_is_the_kl_of_its_softmax():
    g = torch.Generator().manual_seed(0)
    fp, q = torch.randn(5, 7, 2, generator=g), torch.randn(5, 7, 2, generator=g)
    T = 4.0
    pf, lq = torch.softmax(fp / T, -1), torch.log_softmax(q / T, -1)
    direct = (pf * (torch.log(pf) - lq)).sum(-1).mean()
    ours = bernoulli_kl(head_logit("softmax1", fp), head_logit("softmax1", q), T)
    torch.testing.assert_close(ours, direct, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="conf_fn"):
        head_logit("tanh", fp)


class _TwoHeads:
    heads = [HeadSpec("conf", "c", "confidence", conf_fn="sigmoid"), HeadSpec("reg", "r", "semantic", mask_from="conf")]


def test_prediction_difference_hand_computed():
    fp = {"c": torch.tensor([[0.0, 0.0]]), "r": torch.tensor([[[1.0], [2.0]]])}
    q = {"c": torch.tensor([[math.log(3.0), 0.0]]), "r": torch.tensor([[[1.5], [1.0]]])}
    terms = prediction_difference(_TwoHeads(), q, fp, 1.0)
    assert float(terms["conf"]) == pytest.approx(0.25 * math.log(4 / 3), rel=1e-6)
    # squared error summed over channels (dim 1), averaged over the rest: (0.25 + 1) / 1
    assert float(terms["reg"]) == pytest.approx(1.25, rel=1e-6)


def _conv_bn(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1))
    with torch.no_grad():
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2.0)
        m[1].weight.uniform_(0.5, 1.5)
        m[1].weight[2] = 0.0  # a channel the BatchNorm scales to zero
        m[1].bias.uniform_(-0.5, 0.5)
    return m.eval()


def test_folded_layer_gives_back_the_batchnorm_input_statistics():
    m = _conv_bn()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        pre = m[0](x)
    q = quantize_model(m, "w8a8", example=x)
    layer = q[0]
    assert layer.has_folded_bn and isinstance(q[1], nn.Identity)
    assert "bn_mean" not in q.state_dict() and "0.bn_mean" not in q.state_dict()  # not saved with the model
    stats = BatchNormStatistics(q)
    assert len(stats) == 1
    with torch.no_grad(), quantization_disabled(q):
        q(x)
    (mean, std, tmean, tstd), = stats.seen
    keep = m[1].weight != 0
    flat = pre.flatten(2)[:, keep]
    torch.testing.assert_close(mean, flat.mean(2), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(std, torch.sqrt(flat.var(2) + 1e-6), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tmean, m[1].running_mean[keep])
    torch.testing.assert_close(tstd, torch.sqrt(m[1].running_var + m[1].eps)[keep])
    stats.remove()


def test_batchnorm_module_left_in_place_is_hooked_on_its_input():
    bn = nn.BatchNorm2d(3).eval()
    stats = BatchNormStatistics(nn.Sequential(bn))
    x = torch.randn(2, 3, 4, 5) * 2 + 1
    bn(x)
    (mean, std, tmean, tstd), = stats.seen
    torch.testing.assert_close(mean, x.flatten(2).mean(2))
    assert float(stats.loss()) == pytest.approx(float(((mean - 0) ** 2).sum() / 2 + ((std - tstd) ** 2).sum() / 2),
                                                rel=1e-5)
    assert stats.seen == []


def test_distribution_correction_moves_inputs_towards_the_statistics():
    m = _conv_bn(1)
    x = torch.randn(6, 3, 8, 8) * 3 + 2  # far from what the BatchNorm expects
    q = quantize_model(m, "w8a8", example=x)
    stats = BatchNormStatistics(q)

    def bn_loss(inp):
        stats.seen = []  # (its hooks also saw the correction's own passes)
        with torch.no_grad(), quantization_disabled(q):
            q(inp)
        return float(stats.loss())

    before = bn_loss(x)
    with quantization_disabled(q):
        (fixed,) = correct_inputs(q, (x,), iters=60, lr=0.05, lambda_c=100.0, batch_size=4)
    assert fixed.shape == x.shape and not torch.equal(fixed, x)
    assert bn_loss(fixed) < 0.5 * before
    assert all(p.requires_grad for p in q.parameters()) and all(p.grad is None for p in q.parameters())
    # a strong closeness term keeps the inputs where they were
    with quantization_disabled(q):
        (kept,) = correct_inputs(q, (x,), iters=20, lr=0.05, lambda_c=1e-6, batch_size=6)
    assert float((kept - x).abs().max()) < float((fixed - x).abs().max())
    stats.remove()
    # no BatchNorm in the block, or no steps: the inputs come back untouched
    plain = nn.Sequential(nn.Conv2d(3, 2, 1))
    assert correct_inputs(plain, (x,), 5, 0.1, 1.0, 4)[0] is x
    assert correct_inputs(q, (x,), 0, 0.1, 1.0, 4)[0] is x


def test_float_after_and_frozen_except_restore_the_model():
    x = torch.randn(2, 3, 8, 8)
    q = calibrate(quantize_model(_conv_bn(), "w4a4", example=x), x)
    layers = list(quant_layers(q).values())
    with float_after([q[3]]):
        assert not layers[1].quantize_weight and not layers[1].input_quantizer.enabled
        assert layers[0].quantize_weight and layers[0].input_quantizer.enabled
    assert all(l.quantize_weight and l.input_quantizer.enabled for l in layers)
    keep = layers[0].weight
    with frozen_except(q, [keep]):
        assert keep.requires_grad and not layers[1].weight.requires_grad
    assert all(p.requires_grad for p in q.parameters())


def test_pdquant_step_adds_the_prediction_term(images_ganet):
    """Inside the engine each PD-Quant iteration reports its reconstruction, rounding and prediction terms;
    QDrop's has no prediction term; the run leaves a finished model."""
    q, images = images_ganet
    seen = []
    rec = Reconstructor(q, get_method("pdquant"), get_budget("ci"), images, seed=0, progress=False,
                        monitor=lambda e: seen.append(e) if e["event"] == "iteration" else None)
    assert rec.hyper["v_lr"] == 3e-3
    rec.run()
    assert seen and all(set(e["terms"]) == {"rec", "round", "pd"} for e in seen)
    assert all(e["terms"]["pd"] >= 0 for e in seen) and any(e["terms"]["pd"] > 0 for e in seen)


@pytest.fixture(scope="module")
def images_ganet():
    import warnings

    from selfocus_ext import models
    from selfocus_ext.data.datasets import calibration_images

    images = calibration_images(8, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantize_model(models.load("ganet-s"), "w4a4")
    return calibrate(q, images), images
