"""CLRNet (cross-layer refinement of line priors) as its implementation publishes it for CULane: ResNet-18/34,
an FPN over layers 2-4 to 64 channels, 192 learned line priors refined in three stages (coarse to fine
feature level: priors sampled with bilinear grid sampling at 36 rows, ROI gathering with attention over the
whole map, two shared fully connected layers per branch). Input: the CULane image below row 270, resized to
800x320, pixels minus the BGR ImageNet means (0-255 scale); the converter reverses the first convolution's
input channels, so the project feeds RGB.

Heads: ``cls`` [B, 192, 2] logits (confidence, foreground column) and ``lanes`` [B, 192, 76] = (start y,
start x, angle, length, 72 normalised x) of the last stage (semantic). Post-processing as published: score
at least 0.4, line suppression (50 px, 4 lanes; ``selfocus::line_nms`` with the 77-value layout), the length
rounded to rows, the points from the start row to the end row (the part below the start kept while inside
the image), in original-frame pixels. (The implementation then fits a spline through them before writing
every eighth row; the project keeps the prior-row points.)
"""
from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import MatMul
from ...lanes.frames import ModelInput
from ...lanes.frames import get_frame
from ..base import HeadSpec
from .base import PublishedLaneModel
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout, flip_first_conv
from .layers import ConvModule, top_down_sum
from .resnet import DEPTHS, ResNetTrunk

BGR_MEAN = (103.939, 116.779, 123.68)
# CLRNet's test transform: OpenCV decoding, imgaug's Resize (OpenCV INTER_CUBIC on uint8), img / 255 in
# float32; its config's img_norm is declared but no process applies it
CLRNET_INPUT = ModelInput(get_frame("culane"), (800, 320), 270.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                          resize="cv2-cubic")
POINTS, PRIORS, SAMPLES, STAGES, DIM = 72, 192, 36, 3, 64
# the rows CLRNet's CULane writer reads each lane's spline on (get_prediction_string)


LAYOUT = CheckpointLayout("CLRNet", top_keys=("net", "model", "state_dict"), renames=((r"^heads\.", "refine."),),
                          ignore=(r"^refine\.seg_decoder\.", r"^refine\.criterion\."),
                          transform=flip_first_conv("backbone.model.conv1.weight"))


class FPN(nn.Module):
    def __init__(self, in_channels=(128, 256, 512), out=DIM):
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvModule(c, out, 1, norm=False, act=False) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out, out, 3, padding=1, norm=False, act=False) for _ in in_channels)

    def forward(self, feats):
        lat = top_down_sum([conv(f) for conv, f in zip(self.lateral_convs, feats)])
        return [conv(l) for conv, l in zip(self.fpn_convs, lat)]


class ROIGather(nn.Module):
    """Prior features of every stage so far, convolved along the rows and fused; a fully connected layer;
    attention of each prior over the (10x25 resized) feature map."""

    def __init__(self, channels=DIM, priors=PRIORS, samples=SAMPLES, hidden=DIM, stages=STAGES, mid=48):
        super().__init__()
        self.channels, self.priors = channels, priors
        self.f_key = ConvModule(channels, channels, 1)
        self.f_query = nn.Sequential(nn.Conv1d(priors, priors, 1, groups=priors), nn.ReLU())
        self.f_value = nn.Conv2d(channels, channels, 1)
        self.W = nn.Conv1d(priors, priors, 1, groups=priors)
        self.convs = nn.ModuleList(ConvModule(channels, mid, (9, 1), padding=(4, 0)) for _ in range(stages))
        self.catconv = nn.ModuleList(ConvModule(mid * (i + 1), channels, (9, 1), padding=(4, 0)) for i in range(stages))
        self.fc = nn.Linear(samples * hidden, hidden)
        self.fc_norm = nn.LayerNorm(hidden)
        self.scores, self.mix = MatMul(), MatMul()

    def forward(self, stage_features, fmap, stage: int):
        roi = self.catconv[stage](torch.cat([conv(f) for conv, f in zip(self.convs, stage_features)], dim=1))
        B = fmap.shape[0]
        roi = F.relu(self.fc_norm(self.fc(roi.reshape(B * self.priors, -1)))).view(B, self.priors, -1)
        value = F.interpolate(self.f_value(fmap), (10, 25)).flatten(2).permute(0, 2, 1)
        key = F.interpolate(self.f_key(fmap), (10, 25)).flatten(2)
        sim = F.softmax(self.scores(self.f_query(roi), key) * self.channels ** -0.5, dim=-1)
        return roi + self.W(self.mix(sim, value))


def _fc_stack(layers: int = 2) -> nn.ModuleList:
    return nn.ModuleList(m for _ in range(layers) for m in (nn.Linear(DIM, DIM), nn.ReLU(inplace=True)))


class CLRHead(nn.Module):
    def __init__(self, width: int, height: int):
        super().__init__()
        self.width, self.height = width, height
        idx = (torch.linspace(0, 1, steps=SAMPLES) * (POINTS - 1)).long()
        self.register_buffer("sample_x_indexs", idx)
        self.register_buffer("prior_feat_ys", torch.flip(1 - idx.float() / (POINTS - 1), dims=[-1]))
        self.register_buffer("prior_ys", torch.linspace(1, 0, steps=POINTS))
        self.prior_embeddings = nn.Embedding(PRIORS, 3)
        # the trained priors (from the embeddings) travel in the checkpoint
        self.register_buffer("priors", torch.zeros(PRIORS, 6 + POINTS))
        self.register_buffer("priors_on_featmap", torch.zeros(PRIORS, SAMPLES))
        self.reg_modules = _fc_stack()
        self.cls_modules = _fc_stack()
        self.roi_gather = ROIGather()
        self.reg_layers = nn.Linear(DIM, POINTS + 4)
        self.cls_layers = nn.Linear(DIM, 2)

    def pool(self, fmap, xs):
        B = fmap.shape[0]
        ys = self.prior_feat_ys.view(1, 1, -1, 1).expand(B, PRIORS, SAMPLES, 1)
        grid = torch.cat([xs.view(B, PRIORS, SAMPLES, 1) * 2.0 - 1.0, ys * 2.0 - 1.0], dim=-1)
        f = F.grid_sample(fmap, grid, align_corners=True).permute(0, 2, 1, 3)
        return f.reshape(B * PRIORS, DIM, SAMPLES, 1)

    def lines(self, start_y, start_x, theta):
        """x (normalised) of a line through (start x, 1 - start y) at angle theta*pi on the prior rows."""
        W, H = self.width, self.height
        return (start_x[..., None] * (W - 1) + ((1 - self.prior_ys - start_y[..., None]) * H /
                torch.tan(theta[..., None] * math.pi + 1e-5))) / (W - 1)

    def forward(self, feats):
        levels = list(feats[-STAGES:])[::-1]  # coarse to fine
        B = levels[0].shape[0]
        priors = self.priors.expand(B, -1, -1)
        on_map = self.priors_on_featmap.expand(B, -1, -1)
        pooled = []
        for stage in range(STAGES):
            pooled.append(self.pool(levels[stage], torch.flip(on_map, dims=[2])))
            f = self.roi_gather(pooled, levels[stage], stage).reshape(B * PRIORS, DIM)
            c, r = f, f
            for layer in self.cls_modules:
                c = layer(c)
            for layer in self.reg_modules:
                r = layer(r)
            cls = self.cls_layers(c).reshape(B, PRIORS, 2)
            reg = self.reg_layers(r).reshape(B, PRIORS, POINTS + 4)
            head = priors[..., 2:5] + reg[..., :3]
            xs = self.lines(head[..., 0], head[..., 1], head[..., 2])
            lanes = torch.cat([head, reg[..., 3:4], xs + reg[..., 4:]], dim=-1)
            if stage < STAGES - 1:
                priors = torch.cat([cls, head, reg[..., 3:4], xs], dim=-1).detach()
                on_map = priors[..., 6 + self.sample_x_indexs]
        return cls, lanes


class CLRNetPublished(PublishedLaneModel):
    lines_format = ("five-decimals", {})
    family = "anchor"
    head_layers = ["refine.cls_layers", "refine.reg_layers"]
    heads = [HeadSpec("cls", "cls", "confidence", conf_fn="softmax1"),
             HeadSpec("lanes", "lanes", "semantic", mask_from="cls")]

    def __init__(self, backbone: str = "resnet18", model_input: ModelInput = CLRNET_INPUT):
        super().__init__(model_input)
        self.backbone = nn.Module()
        self.backbone.model = ResNetTrunk(DEPTHS[backbone], returns=("layer2", "layer3", "layer4"))
        self.neck = FPN()
        self.refine = CLRHead(*model_input.size)  # the implementation calls it "heads"

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.backbone.model(x)
        cls, lanes = self.refine(self.neck([f["layer2"], f["layer3"], f["layer4"]]))
        return {"cls": cls, "lanes": lanes}

    def confidence_mask(self, semantic: str, outputs):
        return F.softmax(outputs["cls"], dim=-1)[..., 1:]

    # decoding: the batched native decoder (csrc/core/decoders/published/anchor.h) with the implementation's
    # post-processing as its reference (selfocus_ext/decoders/published_anchor.py)
    decoder_name = "clrnet"
    supports_monte_carlo = True


for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    publish(PublishedModel(f"clrnet-{_bb.replace('resnet', 'r')}", "clrnet", "CLRNet", _bb, _size, "culane", (800, 320),
                           270.0, (LAYOUT,), lambda bb=_bb, **kw: CLRNetPublished(bb, **kw)))
