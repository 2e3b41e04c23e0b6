"""Quantizing your own lane model: wrap the network with its heads and decoder, register it, run the tune
command (or drive the pieces from Python).

    python python/custom_model.py [tune arguments, e.g. --budget ci --calib 64]

The network here borrows the trained layers of the zoo's GANet-S so that the example has something worth
quantizing; any ``nn.Module`` that returns a dict of head tensors works the same way.
"""
import sys

from torch import nn

from selfocus_ext import models, tune
from selfocus_ext.decoders import build_decoder
from selfocus_ext.models import DEFAULT_INPUT, HeadSpec
from selfocus_ext.models.base import WrappedLaneModel


class MyLaneNet(nn.Module):
    """Stands for your network: a module returning a dict of raw head tensors (logits included)."""

    def __init__(self):
        super().__init__()
        zoo = models.load("ganet-s")
        self.backbone, self.neck = zoo.backbone, zoo.neck
        self.heat, self.start, self.sub = zoo.hm, zoo.pts, zoo.int

    def forward(self, x):
        f = self.neck(self.backbone(x))
        return {"heat": self.heat(f), "start": self.start(f), "sub": self.sub(f)}


_ganet_decoder = build_decoder("ganet", DEFAULT_INPUT)  # the zoo's GANet decoder stands for "your post-processing"


def my_decoder(outputs):
    """Your post-processing: head tensors -> LaneSet on the frame's rows. (This one also accepts a leading
    Monte-Carlo dimension, so the noise-score curves are built in one batched call per noise level.)"""
    return _ganet_decoder({"kpts_hm": outputs["heat"], "pts_offset": outputs["start"], "int_offset": outputs["sub"]})


@models.register("my-lanes", own_weights=True)
def build_my_lanes():
    return WrappedLaneModel(
        MyLaneNet(),
        heads=[HeadSpec("heat", "heat", "confidence", conf_fn="sigmoid"),  # confidence: sigmoid probability
               HeadSpec("start", "start", "semantic", mask_from="heat"),   # semantics masked by that confidence
               HeadSpec("sub", "sub", "semantic", mask_from="heat")],
        decode=my_decoder,
        head_layers=["heat.1", "start.1", "sub.1"],  # output layers kept at 8 bits
        supports_monte_carlo=True,
    )


if __name__ == "__main__":
    sys.exit(tune.main(["--model", "my-lanes"] + sys.argv[1:]))
