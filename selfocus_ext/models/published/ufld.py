"""Ultra-Fast-Lane-Detection v1 (row-anchor classification), as its official implementation publishes it:
ResNet-18/34 on the whole CULane image at 800x288, a 1x1 convolution to 8 channels, a two-layer classifier to
(200 grid cells + "absent") x 18 row anchors x 4 lanes.

Heads: the one output tensor splits into ``loc`` [B, 200, 18, 4], the grid-cell logits (semantic), and
``exist`` [B, 18, 4] = logsumexp(cell logits) - absent logit, whose sigmoid is the probability that the lane
has a point on that row (confidence). Post-processing is the implementation's CULane writer: rows flipped
bottom-up, a point where the arg-max is a cell, at the softmax expectation over the cells, lanes with more
than two points, x scaled to 1640 pixels and truncated, minus one.
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from ..base import HeadSpec
from .base import PublishedLaneModel
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout
from .resnet import DEPTHS, ResNetTrunk
from .segmentation import CULANE_INPUT

SOURCE = "Ultra-Fast-Lane-Detection"
GRID, ROWS, LANES = 200, 18, 4
# the auxiliary segmentation branch is used in training only
LAYOUT = CheckpointLayout(SOURCE, top_keys=("model",), ignore=(r"^aux_",))


class UFLDPublished(PublishedLaneModel):
    lines_format = ("integer", {})
    family = "row-anchor"
    max_lanes = LANES
    head_layers = ["cls.2"]
    heads = [HeadSpec("exist", "exist", "confidence", conf_fn="sigmoid"),
             HeadSpec("loc", "loc", "semantic", mask_from="exist")]

    def __init__(self, backbone: str = "resnet18", model_input=CULANE_INPUT):
        super().__init__(model_input)
        self.model = ResNetTrunk(DEPTHS[backbone], returns=("layer4",))
        self.pool = nn.Conv2d(512, 8, 1)
        w, h = model_input.size
        self.cls = nn.Sequential(nn.Linear(8 * ((h + 31) // 32) * ((w + 31) // 32), 2048), nn.ReLU(),
                                 nn.Linear(2048, (GRID + 1) * ROWS * LANES))

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.pool(self.model(x)["layer4"]).flatten(1)
        logits = self.cls(f).view(-1, GRID + 1, ROWS, LANES)
        loc = logits[:, :GRID]
        return {"loc": loc, "exist": torch.logsumexp(loc, dim=1) - logits[:, GRID]}

    def confidence_mask(self, semantic: str, outputs):
        return torch.sigmoid(outputs["exist"]).unsqueeze(1)

    # decoding: the batched native decoder (csrc/core/decoders/ufld.h) with the implementation's writer as
    # its reference (selfocus_ext/decoders/ufld.py)
    decoder_name = "ufld"
    supports_monte_carlo = True


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"ufld-{_bb.replace('resnet', 'r')}", "ufld", SOURCE, _bb, _size, "culane", (800, 288),
                           0.0, (LAYOUT,), lambda bb=_bb, **kw: UFLDPublished(bb, **kw)))
