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

import numpy as np
import torch
import torch.nn.functional as F
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

    def decode_points(self, outputs: Dict[str, torch.Tensor]):
        """Per image, (lanes as (N, 2) original-frame points, mean point probability per lane)."""
        loc_logits = outputs["loc"].detach().float().cpu().numpy()[:, :, ::-1, :]
        exist = outputs["exist"].detach().float().cpu().numpy()[:, ::-1, :]
        w = self.model_input.size[0]
        W, H = self.model_input.frame.width, self.model_input.frame.height
        cell = (w - 1) / (GRID - 1)
        shifted = np.exp(loc_logits - loc_logits.max(1, keepdims=True))
        prob = shifted / shifted.sum(1, keepdims=True)
        expected = (prob * np.arange(1, GRID + 1)[None, :, None, None]).sum(1)  # float64, as published
        # the arg-max is "absent" exactly when the absent logit exceeds every cell logit
        top = loc_logits.max(1)
        absent = np.logaddexp.reduce(loc_logits.astype(np.float64), axis=1) - exist > top
        expected[absent] = 0
        images, scores = [], []
        for b in range(expected.shape[0]):
            lanes, sc = [], []
            for i in range(LANES):
                col = expected[b, :, i]
                if np.count_nonzero(col != 0) <= 2:
                    continue
                k = np.nonzero(col > 0)[0]
                xs = np.array([int(col[j] * cell * W / w) - 1 for j in k], np.float64)
                ys = np.array([int(H - j * 20) - 1 for j in k], np.float64)
                lanes.append(np.stack([xs, ys], 1))
                sc.append(float(torch.sigmoid(torch.from_numpy(exist[b, k, i])).mean()))
            images.append(lanes)
            scores.append(sc)
        return images, scores



for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"ufld-{_bb.replace('resnet', 'r')}", "ufld", SOURCE, _bb, _size, "culane", (800, 288),
                           0.0, (LAYOUT,), lambda bb=_bb, **kw: UFLDPublished(bb, **kw)))
