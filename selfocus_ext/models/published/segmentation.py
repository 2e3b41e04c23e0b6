"""SCNN and RESA as pytorch-auto-drive publishes them (ResNet-18/34, CULane 800x288 input, whole image).

Heads: ``out`` [B, 5, 36, 100] segmentation logits (background + 4 lane slots, semantic) and ``lane`` [B, 4]
existence logits (confidence). Post-processing is the implementation's: the logits resized to the input
(bilinear, corners aligned), softmax, existence above 0.5 (at most ``max_lanes``), each kept slot's map
blurred 9x9 (border replicated) and read on 18 rows every 20 original pixels from the bottom; a row's
arg-max above 0.3 is a point, its column scaled to the original width and truncated to an integer.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ...lanes.frames import ModelInput
from ...lanes.frames import get_frame
from ..base import HeadSpec
from .base import PublishedLaneModel
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout, flip_first_conv
from .resnet import BOTTLENECK_DEPTHS, DEPTHS, ResNetTrunk

SLOTS = 4
PAD = "pytorch-auto-drive"
PAD_LAYOUT = CheckpointLayout(PAD, top_keys=("model",))
# pytorch-auto-drive's and UFLD's test transform: PIL decoding and bilinear resize, ToTensor and Normalize
CULANE_INPUT = ModelInput(get_frame("culane"), (800, 288), 0.0, reader="pil", resize="pil-bilinear")


class ChannelReducer(nn.Module):
    """1x1 convolution to 128 channels, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int = 128):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn1(self.conv1(x)))


class SpatialConv(nn.Module):
    """SCNN's message passing: sequential 1x9 / 9x1 convolutions sweeping down, up, right and left. The
    upward and leftward sweeps stop before the first row / column (as published)."""

    def __init__(self, channels: int = 128):
        super().__init__()
        self.conv_d = nn.Conv2d(channels, channels, (1, 9), padding=(0, 4))
        self.conv_u = nn.Conv2d(channels, channels, (1, 9), padding=(0, 4))
        self.conv_r = nn.Conv2d(channels, channels, (9, 1), padding=(4, 0))
        self.conv_l = nn.Conv2d(channels, channels, (9, 1), padding=(4, 0))

    @staticmethod
    def _sweep(x, conv, dim: int, order) -> torch.Tensor:
        parts = list(x.split(1, dim=dim))
        for i, j in order:  # part i receives the message of its already updated neighbour j
            parts[i] = parts[i] + F.relu(conv(parts[j]))
        return torch.cat(parts, dim=dim)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = self._sweep(x, self.conv_d, 2, [(i, i - 1) for i in range(1, h)])
        x = self._sweep(x, self.conv_u, 2, [(i, i + 1) for i in range(h - 2, 0, -1)])
        x = self._sweep(x, self.conv_r, 3, [(i, i - 1) for i in range(1, w)])
        return self._sweep(x, self.conv_l, 3, [(i, i + 1) for i in range(w - 2, 0, -1)])


class FeatureShift(nn.Module):
    """RESA's recurrent feature-shift aggregation: ``iterations`` rounds per direction, each adding
    ``alpha * relu(conv(features shifted by h / 2^(iterations - i)))`` (cyclic shifts)."""

    def __init__(self, channels: int = 128, iterations: int = 5, alpha: float = 2.0):
        super().__init__()
        self.iterations, self.alpha = iterations, alpha
        row = lambda: nn.ModuleList(nn.Conv2d(channels, channels, (1, 9), padding=(0, 4), bias=False)
                                    for _ in range(iterations))
        col = lambda: nn.ModuleList(nn.Conv2d(channels, channels, (9, 1), padding=(4, 0), bias=False)
                                    for _ in range(iterations))
        self.conv_d, self.conv_u, self.conv_r, self.conv_l = row(), row(), col(), col()

    def forward(self, x):
        h, w = x.shape[-2:]
        for convs, size, dim, sign in ((self.conv_d, h, 2, 1), (self.conv_u, h, 2, -1),
                                       (self.conv_r, w, 3, 1), (self.conv_l, w, 3, -1)):
            for i, conv in enumerate(convs):
                idx = (torch.arange(size, device=x.device) + sign * (size // 2 ** (self.iterations - i))) % size
                x = x + self.alpha * F.relu(conv(x.index_select(dim, idx)))
        return x


class NonBottleneck1d(nn.Module):
    """ERFNet's factorised residual block (3x1, 1x3, BN, twice)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1x3_1(F.relu(self.conv3x1_1(x)))))
        y = self.bn2(self.conv1x3_2(F.relu(self.conv3x1_2(y))))
        return F.relu(y + x)


class BilateralUpsample(nn.Module):
    """RESA's decoder block: a transposed-convolution path refined by two ERFNet blocks, plus a coarse
    bilinear path (corners aligned)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.follows = nn.ModuleList(NonBottleneck1d(cout) for _ in range(2))
        self.interpolate_conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.interpolate_bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        fine = F.relu(self.bn(self.conv(x)))
        for block in self.follows:
            fine = block(fine)
        coarse = F.relu(self.interpolate_bn(self.interpolate_conv(x)))
        return fine + F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=True)


class BilateralDecoder(nn.Module):
    """Three bilateral up-sampling blocks (x8) and a 1x1 prediction."""

    def __init__(self, cin: int = 128, classes: int = SLOTS + 1):
        super().__init__()
        base = cin // 8
        self.layers = nn.ModuleList(BilateralUpsample(base * 2 ** (3 - i), base * 2 ** (2 - i)) for i in range(3))
        self.output_proj = nn.Conv2d(base, classes, 1)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.output_proj(x)


class LargeFOV(nn.Module):
    def __init__(self, cin: int, classes: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, classes, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class ExistenceFromProbabilities(nn.Module):
    """SCNN's existence head: average-pooled segmentation probabilities -> two linear layers."""

    def __init__(self, flattened: int = 4500, slots: int = SLOTS):
        super().__init__()
        self.linear1 = nn.Linear(flattened, 128)
        self.linear2 = nn.Linear(128, slots)

    def forward(self, prob):
        return self.linear2(F.relu(self.linear1(F.avg_pool2d(prob, 2).flatten(1))))


class ExistenceFromFeatures(nn.Module):
    """RESA's (ERFNet's) existence head: dilated conv, BN, ReLU, 1x1 to 5 maps, softmax, pool, two linears."""

    def __init__(self, flattened: int = 4500, slots: int = SLOTS, cin: int = 128):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(cin, 32, 3, padding=4, dilation=4, bias=False),
                                     nn.BatchNorm2d(32, eps=1e-3)])
        self.layers_final = nn.ModuleList([nn.Dropout2d(0.1), nn.Conv2d(32, slots + 1, 1)])
        self.linear1 = nn.Linear(flattened, 128)
        self.linear2 = nn.Linear(128, slots)

    def forward(self, x):
        y = F.relu(self.layers[1](self.layers[0](x)))
        y = self.layers_final[1](self.layers_final[0](y))
        y = F.avg_pool2d(F.softmax(y, dim=1), 2).flatten(1)
        return self.linear2(F.relu(self.linear1(y)))


class PublishedSegmentation(PublishedLaneModel):
    """Shared heads and post-processing of the published segmentation detectors."""
    lines_format = ("pad", {"x_type": "float", "y_type": "int"})

    family = "segmentation"
    max_lanes = SLOTS
    heads = [HeadSpec("lane", "lane", "confidence", conf_fn="sigmoid"),
             HeadSpec("out", "out", "semantic", mask_from="lane")]

    def __init__(self, model_input: ModelInput = CULANE_INPUT):
        super().__init__(model_input)

    def pooled_size(self) -> int:
        """Inputs of the existence head's first linear layer: 5 maps at stride 16 (4500 at 800x288)."""
        w, h = self.model_input.size
        return (SLOTS + 1) * (h // 16) * (w // 16)

    def confidence_mask(self, semantic: str, outputs):
        p = torch.sigmoid(outputs["lane"])  # background channel kept at 1
        return torch.cat([torch.ones_like(p[:, :1]), p], dim=1)[:, :, None, None]

    # decoding: the batched native decoder (csrc/core/decoders/published/segmentation.h) with the
    # implementation's post-processing as its reference (selfocus_ext/decoders/published_segmentation.py)
    decoder_name = "pad-segmentation"
    supports_monte_carlo = True


class SCNNPublished(PublishedSegmentation):
    """pytorch-auto-drive's ResNet SCNN: dilated ResNet (stride 8) to layer4, 128-channel reducer, spatial
    message passing, a 3x3 classifier, existence from the pooled probabilities."""

    head_layers = ["classifier.0.conv", "lane_classifier.linear2"]

    def __init__(self, backbone: str = "resnet18", **kw):
        super().__init__(**kw)
        self.backbone = ResNetTrunk(DEPTHS[backbone], dilate=(False, True, True), returns=("layer4",))
        self.channel_reducer = ChannelReducer(512)
        self.scnn_layer = SpatialConv(128)
        self.classifier = nn.Sequential(LargeFOV(128, SLOTS + 1))
        self.lane_classifier = ExistenceFromProbabilities(self.pooled_size())

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.scnn_layer(self.channel_reducer(self.backbone(x)["layer4"]))
        out = self.classifier(f)
        return {"out": out, "lane": self.lane_classifier(out.softmax(dim=1))}


class RESAPublished(PublishedSegmentation):
    """pytorch-auto-drive's ResNet RESA: dilated ResNet to layer3 (stride 8), reducer, 5 feature-shift
    iterations, the bilateral up-sampling decoder, existence from the shifted features."""

    head_layers = ["decoder.output_proj", "lane_classifier.linear2"]

    def __init__(self, backbone: str = "resnet18", **kw):
        super().__init__(**kw)
        self.backbone = ResNetTrunk(DEPTHS[backbone], stages=3, dilate=(False, True, True), returns=("layer3",))
        self.channel_reducer = ChannelReducer(256)
        self.spatial_conv = FeatureShift(128, 5, 2.0)
        self.decoder = BilateralDecoder(128)
        self.lane_classifier = ExistenceFromFeatures(self.pooled_size())

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.spatial_conv(self.channel_reducer(self.backbone(x)["layer3"]))
        return {"out": self.decoder(f), "lane": self.lane_classifier(f)}


RESA_OFFICIAL = "official RESA"
# the implementation's CULane input: below row 240, 800x288, BGR pixels minus their means (0-255 scale)
# the official RESA: OpenCV decoding, the float32 image resized with INTER_CUBIC, BGR means subtracted in float64
RESA_INPUT = ModelInput(get_frame("culane"), (800, 288), 240.0, mean=tuple(m / 255 for m in (123.68, 116.779, 103.939)),
                        std=(1 / 255,) * 3, resize="cv2-cubic-float")
# official names -> the project's: ``resa.conv_d0`` -> ``resa.conv_d.0``; its ``heads`` (the existence head) ->
# ``exist_head`` (``heads`` declares a model's outputs here)
RESA_LAYOUT = CheckpointLayout(RESA_OFFICIAL, top_keys=("net",), strip_prefixes=("module.",),
                               renames=((r"^resa\.conv_([durl])(\d+)\.", r"resa.conv_\1.\2."),
                                        (r"^heads\.", "exist_head.")),
                               transform=flip_first_conv("backbone.model.conv1.weight"))


class PlainDecoder(nn.Module):
    """The official RESA's CULane decoder: a 1x1 convolution to the 5 maps (at stride 8; decoding resizes)."""

    def __init__(self, cin: int = 128, classes: int = SLOTS + 1):
        super().__init__()
        self.conv8 = nn.Conv2d(cin, classes, 1)

    def forward(self, x):
        return self.conv8(x)


class ExistenceFromMaps(nn.Module):
    """The official RESA's existence head: its own 1x1 maps, softmax, 2x2 average pool, two linear layers."""

    def __init__(self, flattened: int = 4500, slots: int = SLOTS, cin: int = 128):
        super().__init__()
        self.conv8 = nn.Conv2d(cin, slots + 1, 1)
        self.fc9 = nn.Linear(flattened, 128)
        self.fc10 = nn.Linear(128, slots)

    def forward(self, x):
        y = F.avg_pool2d(F.softmax(self.conv8(x), dim=1), 2).flatten(1)
        return self.fc10(F.relu(self.fc9(y)))


class RESAOfficial(PublishedSegmentation):
    """The official RESA for CULane: ResNet-50 dilated to stride 8, a 1x1 convolution to 128 channels, 4
    feature-shift iterations, the plain decoder and the existence head. Input below row 240 (BGR means).

    Post-processing as its CULane evaluator: the maps resized to the input (bilinear, corners not aligned),
    softmax, existence > 0.5, 9x9 blur, 18 rows every 20 frame pixels from the bottom (input row
    round(h - i * 20 / 350 * h) - 1), arg-max above 0.3, x = round((arg-max + 1) * 1640 / w - 1)."""
    lines_format = ("integer", {})

    head_layers = ["decoder.conv8", "exist_head.fc10"]

    def __init__(self, backbone: str = "resnet50", model_input: ModelInput = RESA_INPUT):
        super().__init__(model_input)
        self.backbone = nn.Module()
        self.backbone.model = ResNetTrunk(BOTTLENECK_DEPTHS[backbone], dilate=(False, True, True), returns=("layer4",),
                                          bottleneck=True)
        self.backbone.out = nn.Conv2d(2048, 128, 1, bias=False)
        self.resa = FeatureShift(128, 4, 2.0)
        self.decoder = PlainDecoder(128)
        self.exist_head = ExistenceFromMaps(self.pooled_size())

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.resa(self.backbone.out(self.backbone.model(x)["layer4"]))
        return {"out": self.decoder(f), "lane": self.exist_head(f)}

    decoder_name = "resa-official"


publish(PublishedModel("resa-r50-official", "resa", RESA_OFFICIAL, "resnet50", "l", "culane", (800, 288), 240.0,
                       (RESA_LAYOUT,), lambda **kw: RESAOfficial("resnet50", **kw),
                       note="the official RESA's CULane model (its published sizes: ResNet-50 CULane, ResNet-34 TuSimple)"))

for _bb, _size in (("resnet18", "s"), ("resnet34", "m")):
    _r = _bb.replace("resnet", "r")
    publish(PublishedModel(f"scnn-{_r}", "scnn", PAD, _bb, _size, "culane", (800, 288), 0.0, (PAD_LAYOUT,),
                           lambda bb=_bb, **kw: SCNNPublished(bb, **kw)))
    publish(PublishedModel(f"resa-{_r}", "resa", PAD, _bb, _size, "culane", (800, 288), 0.0, (PAD_LAYOUT,),
                           lambda bb=_bb, **kw: RESAPublished(bb, **kw)))
