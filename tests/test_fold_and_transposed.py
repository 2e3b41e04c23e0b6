"""BatchNorm folding wherever a BatchNorm reads a layer's output (not only where it is declared next to it),
transposed convolutions quantized per output channel, both saved, reloaded and exported."""
import os

import numpy as np
import pytest
import torch
from torch import nn

from selfocus_ext import QuantConfig, export_onnx, quantize_
from selfocus_ext.quant import QuantConvTranspose2d, fold_batchnorm, load_quantized, quant_layers, save_quantized
from selfocus_ext.quant.convert import adjacent_pairs, traced_pairs


def _randomize_bn(model):
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


class Rows(nn.Module):
    """Layers and norms in two ModuleLists (as BezierLaneNet's row projection), a transposed convolution
    with its norm (as RESA's decoder), a linear layer with a BatchNorm1d, and a layer whose output a norm
    and a residual both read (which must not be folded)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv1d(8, 8, 3, padding=1) for _ in range(2))
        self.norms = nn.ModuleList(nn.BatchNorm1d(8) for _ in range(2))
        self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.side = nn.Conv2d(6, 6, 1)
        self.up_norm = nn.BatchNorm2d(6)
        self.shared = nn.Conv2d(6, 6, 1)
        self.shared_norm = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)
        self.fc_norm = nn.BatchNorm1d(5)

    def forward(self, x):
        f = self.stem(x)
        b, c, h, w = f.shape
        r = f.mean(2)
        for conv, norm in zip(self.convs, self.norms):
            r = torch.relu(norm(conv(r)))
        f = f + r[:, :, None, :]
        u = torch.relu(self.up_norm(self.up(f)))
        s = self.shared(u)
        u = self.shared_norm(s) + s  # the conv output read twice: folding would change the residual
        return {"out": self.side(u), "cls": self.fc_norm(self.fc(u.mean((2, 3))))}


def test_traced_folding_finds_the_pairs_declaration_order_hides():
    model = _randomize_bn(Rows())
    x = torch.randn(2, 3, 8, 10)
    assert ("shared", "shared_norm") in adjacent_pairs(model)
    assert ("side", "up_norm") in adjacent_pairs(model)  # declaration order is wrong here: the pass decides  # declared next to each other
    pairs = set(traced_pairs(model, x))
    assert {("convs.0", "norms.0"), ("convs.1", "norms.1"), ("up", "up_norm"), ("fc", "fc_norm")} <= pairs
    assert ("shared", "shared_norm") not in pairs  # a residual also reads the conv's output
    ref = model(x)
    folded = fold_batchnorm(model, x)
    got = model(x)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-5)
    assert isinstance(model.norms[0], nn.Identity) and isinstance(model.up_norm, nn.Identity)
    assert isinstance(model.fc_norm, nn.Identity)
    # the norm whose conv output a residual also reads is declared next to its conv, but folding it would
    # change the residual: it is left alone
    assert folded == 4 and isinstance(model.shared_norm, nn.BatchNorm2d)


def test_a_layer_output_read_twice_keeps_its_batchnorm():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.head = nn.Conv2d(4, 4, 1)
            self.norm = nn.BatchNorm2d(4)

        def forward(self, x):
            c = self.conv(x)
            return self.head(c) + self.norm(c)

    model = _randomize_bn(Shared())
    x = torch.randn(1, 3, 5, 5)
    ref = model(x)
    assert traced_pairs(model, x) == []  # the head also reads the conv's output
    assert fold_batchnorm(model, x) == 0
    assert isinstance(model.norm, nn.BatchNorm2d)
    torch.testing.assert_close(model(x), ref)


def test_transposed_convolution_is_quantized_per_output_channel(tmp_path):
    model = _randomize_bn(Rows())
    x = torch.randn(4, 3, 8, 10)
    with pytest.warns(UserWarning, match=r"stay in float: \['BatchNorm2d'\]"):  # only the unfoldable norm
        q = quantize_(model, QuantConfig.parse("w8a8"), x)
    layer = quant_layers(q)["up"]
    assert isinstance(layer, QuantConvTranspose2d)
    assert layer.weight.shape == (6, 8, 3, 3) and layer.weight_quantizer.scale.numel() == 6
    ref, got = model(x), q(x)
    for k in ref:
        err = float((got[k] - ref[k]).abs().max() / ref[k].abs().max())
        assert err < 0.05, (k, err)
    assert q.quant_config["folded_bn"] == 4
    # saved and rebuilt around the float model: the same folds, the same outputs
    path = str(tmp_path / "q.pt")
    save_quantized(q, path)
    again = load_quantized(model, path)
    torch.testing.assert_close(again(x)["out"], got["out"])


def test_grouped_transposed_convolution_stays_float_with_a_warning():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2), nn.Conv2d(4, 2, 1))
    with pytest.warns(UserWarning, match="ConvTranspose2d"):
        q = quantize_(model, "w8a8", torch.randn(2, 3, 4, 4))
    assert "1" not in quant_layers(q)


def test_files_saved_before_traced_folding_read_as_adjacent():
    old = {"bits": "w4a4", "first_last_8bit": True, "skip": [], "weight_observer": "auto", "act_observer": "mse"}
    assert QuantConfig.from_dict(old).fold == "adjacent"
    assert QuantConfig.from_dict(QuantConfig.parse("w4a4").to_dict()).fold == "traced"
    with pytest.raises(ValueError, match="QuantConfig.fold"):
        QuantConfig(fold="everything")


def test_transposed_convolution_exports_and_runs(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
                                      nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))

        def forward(self, x):
            return {"out": self.body(x)}

    model = _randomize_bn(Up())
    x = torch.randn(4, 3, 8, 8)
    q = quantize_(model, "w8a8", x)
    path = str(tmp_path / "t.onnx")
    export_onnx(q, path, example=x[:1])
    from selfocus_ext.export.frozen import freeze

    frozen, _ = freeze(q)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    want = frozen(x)["out"].detach().numpy()
    step = np.abs(want).max() / 127
    assert np.mean(np.abs(got - want) <= step) > 0.99 and os.path.getsize(path) > 0


def test_a_layer_shared_across_stages_folds_when_every_call_feeds_its_norm():
    class Stages(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)
            self.norm = nn.BatchNorm2d(4)

        def forward(self, x):
            for _ in range(3):
                x = torch.relu(self.norm(self.conv(x))) + x
            return {"out": x}

    model = _randomize_bn(Stages())
    x = torch.randn(1, 4, 5, 5)
    ref = model(x)["out"]
    assert traced_pairs(model, x) == [("conv", "norm")]
    assert fold_batchnorm(model, x) == 1
    torch.testing.assert_close(model(x)["out"], ref, rtol=1e-5, atol=1e-5)
