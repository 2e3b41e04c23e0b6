"""The Python entry for other code: QuantConfig, quantize_, tune_, export_onnx on a network the zoo does not
have."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from selfocus_ext import QuantConfig, TuneResult, export_onnx, quantize_, tune_
from selfocus_ext.lanes import LaneSet
from selfocus_ext.models import HeadSpec
from selfocus_ext.models.base import WrappedLaneModel
from selfocus_ext.quant import load_quantized, quant_layers, quantize_model, save_quantized

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YS = torch.arange(10, dtype=torch.float32) * 8


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                   nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                   nn.Flatten())
        self.conf = nn.Linear(32, 2)
        self.pos = nn.Linear(32, 2 * len(YS))

    def forward(self, x):
        f = self.trunk(x)
        return {"conf": self.conf(f), "pos": self.pos(f).view(-1, 2, len(YS))}


def _decode(outputs):
    p = torch.sigmoid(outputs["conf"].float())
    xs = torch.sigmoid(outputs["pos"].float()) * 100
    keep = p > 0.3
    return LaneSet(YS, torch.where(keep.unsqueeze(-1), xs, torch.full_like(xs, float("nan"))),
                   torch.where(keep, p, torch.full_like(p, float("nan"))))


def foreign_model(seed=0):
    torch.manual_seed(seed)
    net = TwoHeads()
    with torch.no_grad():  # a BatchNorm with statistics of its own, so that folding is exercised
        net.trunk[1].running_mean.uniform_(-0.2, 0.2)
        net.trunk[1].running_var.uniform_(0.5, 1.5)
    return WrappedLaneModel(net, heads=[HeadSpec("conf", "conf", "confidence", conf_fn="sigmoid"),
                                        HeadSpec("pos", "pos", "semantic", mask_from="conf")],
                            decode=_decode, head_layers=["conf", "pos"]).eval()


def images(n=16, seed=1):
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_quant_config_parses_validates_and_round_trips():
    c = QuantConfig.parse("W4A3")
    assert (c.weight_bits, c.act_bits, c.bits, c.first_last()) == (4, 3, "w4a3", (8, 8))
    assert QuantConfig.from_dict(c.to_dict()) == c
    low = QuantConfig.parse("w2a4", first_last_bits=None, skip=["a.b"])
    assert low.first_last() == (2, 4) and low.skip == ("a.b",) and QuantConfig.from_dict(low.to_dict()) == low
    six = QuantConfig.parse("w4a4", first_last_bits=6)
    assert six.first_last() == (6, 6) and QuantConfig.from_dict(six.to_dict()) == six
    assert len({c.cache_key(), low.cache_key(), six.cache_key(), QuantConfig.parse("w4a3").cache_key()}) == 3
    for bad, where in [(dict(weight_bits=9), "weight_bits"), (dict(act_bits=1), "act_bits"),
                       (dict(first_last_bits=0), "first_last_bits"), (dict(weight_observer="nope"), "weight_observer"),
                       (dict(weight_granularity="per_tensor"), "weight_granularity"),
                       (dict(act_granularity="per_channel"), "act_granularity"), (dict(skip="conv"), "skip")]:
        with pytest.raises(ValueError, match=where):
            QuantConfig(**bad)
    with pytest.raises(ValueError, match="w4a4"):
        QuantConfig.parse("4bit")


def test_quantize_returns_a_calibrated_copy_with_the_configs_bits():
    model = foreign_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = QuantConfig.parse("w4a4", weight_observer="minmax")
    q = quantize_(model, config, images())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the float model is untouched
    layers = quant_layers(q)
    bits = {n: (l.weight_quantizer.bits, l.input_quantizer.bits) for n, l in layers.items()}
    assert bits["module.trunk.0"] == (8, 8) and bits["module.conf"] == (8, 8) and bits["module.pos"] == (8, 8)
    assert bits["module.trunk.3"] == (4, 4)
    assert all(bool((l.weight_quantizer.scale > 0).all()) for l in layers.values())
    assert q.quant_config["bits"] == "w4a4" and QuantConfig.from_dict(q.quant_config) == config
    # an iterable of (images, labels) batches gives the same calibrated model as one tensor
    batches = quantize_(model, config, [(b, 0) for b in images().split(4)])
    x = images(4, seed=5)
    with torch.no_grad():
        assert all(torch.equal(q(x)[k], batches(x)[k]) for k in ("conf", "pos"))


def test_quantize_refuses_bad_input_by_name():
    model = foreign_model()
    with pytest.raises(TypeError, match="model"):
        quantize_("not a model", "w4a4", images())
    with pytest.raises(TypeError, match="config"):
        quantize_(model, 4, images())
    with pytest.raises(ValueError, match="calib_data"):
        quantize_(model, "w4a4", torch.zeros(0, 3, 16, 16))
    with pytest.raises(TypeError, match="calib_data"):
        quantize_(model, "w4a4", "images/")
    with pytest.raises(ValueError, match="calib_data"):
        quantize_(model, "w4a4", torch.zeros(16, 16))


@pytest.mark.parametrize("method", ["qdrop", "sf"])
def test_tune_runs_a_reconstruction_method_in_place(method):
    model = foreign_model()
    q = quantize_(model, "w4a4", images())
    weights = {n: l.weight.detach().clone() for n, l in quant_layers(q).items()}
    with torch.no_grad():
        calibrated = {k: v.clone() for k, v in q(images(4, seed=7)).items()}
    result = tune_(q, method=method, budget="ci", progress=False)
    assert isinstance(result, TuneResult) and result.model is q and result.method == method
    assert result.iterations > 0 and result.unit_seconds
    # the chosen rounding is baked into the weights of the tuned layers
    assert any(not torch.equal(weights[n], l.weight) for n, l in quant_layers(q).items())
    with torch.no_grad():
        tuned = q(images(4, seed=7))
    assert any(not torch.equal(calibrated[k], tuned[k]) for k in tuned)
    if method == "sf":
        assert set(result.curves) == {"conf", "pos"} and result.history
    else:
        assert result.curves is None
    # the tuned model saves and loads like any quantized model
    path = os.path.join(ROOT, "build", "test-api-tuned.pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_quantized(q, path)
    again = load_quantized(foreign_model(), path)
    with torch.no_grad():
        assert all(torch.equal(again(images(4, seed=7))[k], tuned[k]) for k in tuned)
    os.remove(path)


def test_tune_refuses_what_it_cannot_do():
    model = foreign_model()
    q = quantize_(model, "w4a4", images())
    with pytest.raises(ValueError, match="calibration method"):
        tune_(q, method="omse", budget="ci")
    with pytest.raises(ValueError, match="unknown method"):
        tune_(q, method="nope", budget="ci")
    with pytest.raises(ValueError, match="qmodel"):
        tune_(model, method="qdrop", budget="ci")
    plain = quantize_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1)), "w4a4")
    with pytest.raises(ValueError, match="calib_data"):
        tune_(plain, method="qdrop", budget="ci")
    bare = quantize_(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1)), "w4a4", images())
    with pytest.raises(ValueError, match="heads"):
        tune_(bare, method="sf", budget="ci")
    assert tune_(bare, method="brecq", budget="ci", progress=False).iterations > 0  # no heads needed


def test_export_onnx_writes_the_foreign_model(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    q = quantize_(foreign_model(), "w8a8", images())
    info = export_onnx(q, str(tmp_path / "m.onnx"), example=images(2))
    assert os.path.getsize(tmp_path / "m.onnx") == info["bytes"] > 0 and info["layers"] == len(quant_layers(q))


def test_the_example_quantizes_and_tunes_a_model_outside_the_zoo():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "python", "example_quantize_api.py"), "--budget", "ci",
                        "--calib", "16"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "w4a4 sf: " in r.stdout and "after tuning" in r.stdout
