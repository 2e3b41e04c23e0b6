"""Quantize and tune a lane network that is not in the zoo, from Python, without the tune command.

    python python/example_quantize_api.py [--bits w4a4] [--method sf] [--budget ci|quick|fN] [--calib 64]

The network below is written here, not taken from the zoo: a small convolutional trunk and two heads in
the row-anchor style (per lane a presence logit and one x per row). It is untrained, so its lanes mean
nothing; what the example shows is the path: declare the heads and a decoder, ``quantize_`` with a typed
``QuantConfig``, ``tune_`` with a reconstruction method, ``export_onnx``, and how far the quantized outputs
are from the float ones before and after tuning.
"""
import argparse
import os
import sys
import tempfile

import torch
from torch import nn

from selfocus_ext import QuantConfig, export_onnx, quantize_, tune_
from selfocus_ext.data import calibration_images
from selfocus_ext.lanes import LaneSet
from selfocus_ext.lanes.frames import CULANE
from selfocus_ext.models import HeadSpec
from selfocus_ext.models.base import WrappedLaneModel

LANES, ROWS = 4, len(CULANE.ys)


class RowAnchorNet(nn.Module):
    """Image -> {"presence": [B, LANES] logits, "xs": [B, LANES, ROWS] x as a fraction of the width}."""

    def __init__(self, width: int = 16):
        super().__init__()
        layers, c = [], 3
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d((4, 8)), nn.Flatten())
        self.presence = nn.Sequential(nn.Linear(c * 32, 64), nn.ReLU(), nn.Linear(64, LANES))
        self.xs = nn.Sequential(nn.Linear(c * 32, 128), nn.ReLU(), nn.Linear(128, LANES * ROWS))

    def forward(self, x):
        f = self.trunk(x)
        return {"presence": self.presence(f), "xs": self.xs(f).view(-1, LANES, ROWS)}


def decode(outputs) -> LaneSet:
    """Lanes whose presence probability is above 0.5, x on the CULANE rows."""
    p = torch.sigmoid(outputs["presence"].float())
    xs = torch.sigmoid(outputs["xs"].float()) * CULANE.width
    keep = p > 0.5
    xs = torch.where(keep.unsqueeze(-1), xs, torch.full_like(xs, float("nan")))
    return LaneSet(torch.from_numpy(CULANE.ys), xs, torch.where(keep, p, torch.full_like(p, float("nan"))))


def build_model() -> WrappedLaneModel:
    torch.manual_seed(0)
    return WrappedLaneModel(
        RowAnchorNet().eval(),
        heads=[HeadSpec("presence", "presence", "confidence", conf_fn="sigmoid"),
               HeadSpec("xs", "xs", "semantic", mask_from="presence")],
        decode=decode,
        head_layers=["presence.2", "xs.2"],  # the heads' output layers (kept at 8 bits by default)
    ).eval()


@torch.no_grad()
def output_error(model, qmodel, images) -> float:
    """Mean squared difference of all head outputs, quantized against float."""
    fp, q = model(images), qmodel(images)
    return float(sum(((q[k] - fp[k]) ** 2).mean() for k in fp))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="w4a4")
    p.add_argument("--method", default="sf")
    p.add_argument("--budget", default="ci")
    p.add_argument("--calib", type=int, default=64)
    p.add_argument("--onnx", help="where to write the ONNX file (default: a temporary directory)")
    a = p.parse_args(argv)

    model = build_model()
    images = calibration_images(a.calib, seed=0)  # generated road scenes at the default model input
    config = QuantConfig.parse(a.bits)
    qmodel = quantize_(model, config, images)
    before = output_error(model, qmodel, images)
    result = tune_(qmodel, method=a.method, budget=a.budget, progress=False)
    after = output_error(model, qmodel, images)
    print(f"{config.bits} {result.method}: {result.iterations} iterations; head output error against float "
          f"{before:.4g} after calibration, {after:.4g} after tuning")
    with tempfile.TemporaryDirectory() as tmp:
        path = a.onnx or os.path.join(tmp, "model.onnx")
        try:
            info = export_onnx(qmodel, path, force=True)
        except Exception as exc:  # onnx is an optional extra
            print(f"ONNX export skipped: {exc}")
        else:
            print(f"wrote {path} ({info['bytes'] / 1e3:.0f} kB, {info['layers']} quantized layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
