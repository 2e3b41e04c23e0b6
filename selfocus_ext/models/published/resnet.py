"""The ResNet trunk the published lane detectors build on, with torchvision's module names (``conv1``,
``bn1``, ``layer1`` .. ``layer4``, blocks ``conv1 bn1 conv2 bn2 downsample.0/1``), so a published checkpoint's
backbone keys load without renaming.

Options cover what the detectors change: the last stage kept (``stages``), stride replaced by dilation in
later stages (the segmentation models' output stride 8), narrower stages (LSTR's reduced ResNet-18),
whether the stem's max-pool is used, and bottleneck blocks (ResNet-50: 1x1, 3x3, 1x1 x4; as torchvision, only
the 3x3 carries stride and dilation).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

from torch import Tensor, nn

# published depths of the basic-block ResNets, and of the bottleneck ones (``bottleneck=True``)
DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
BOTTLENECK_DEPTHS = {"resnet50": (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)


def _projection(cin: int, cout: int, stride: int):
    """A block's shortcut: a strided 1x1 convolution with batch norm where the shape changes, else None."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation1: int = 1, dilation2: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride, dilation1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(cout, cout, 1, dilation2)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = _projection(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride and dilation), 1x1 expand (x4), each with batch norm; a shortcut."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


class ResNetTrunk(nn.Module):
    """A basic-block ResNet without its classifier. ``forward`` returns the outputs of the stages named in
    ``returns`` (e.g. ``("layer2", "layer3", "layer4")``) as a dict.

    ``dilate``: per stage 2..4, replace the stride-2 of that stage by dilation (torchvision's
    ``replace_stride_with_dilation``: the stage's first block keeps the previous dilation, the rest use the new one).
    ``dilate_second``: whether a block's second convolution is dilated too (RESA's own ResNet) or stays plain
    (pytorch-auto-drive's).
    """

    def __init__(self, depths: Sequence[int] = DEPTHS["resnet18"], widths: Sequence[int] = WIDTHS,
                 stages: int = 4, dilate: Tuple[bool, bool, bool] = (False, False, False), maxpool: bool = True,
                 returns: Sequence[str] = ("layer4",), stem_width: int = 64,
                 dilate_second: bool = False, bottleneck: bool = False):
        super().__init__()
        if not 1 <= stages <= 4:
            raise ValueError(f"stages: expected 1..4, got {stages}")
        if len(depths) < stages or len(widths) < stages:
            raise ValueError(f"depths/widths: expected at least {stages} entries, got {tuple(depths)} / {tuple(widths)}")
        names = [f"layer{i + 1}" for i in range(stages)]
        unknown = [r for r in returns if r not in names]
        if unknown or not returns:
            raise ValueError(f"returns: expected stage names among {names}, got {tuple(returns)}")
        self.returns = tuple(returns)
        self.conv1 = nn.Conv2d(3, stem_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if maxpool else nn.Identity()
        cin, dilation = stem_width, 1
        self.out_channels: Dict[str, int] = {}
        for i in range(stages):
            stride, previous = (1 if i == 0 else 2), dilation
            if i > 0 and dilate[i - 1]:
                dilation, stride = dilation * stride, 1
            if bottleneck:
                cout = widths[i] * Bottleneck.expansion
                blocks = [Bottleneck(cin, widths[i], stride, previous)]
                blocks += [Bottleneck(cout, widths[i], 1, dilation) for _ in range(depths[i] - 1)]
            else:
                cout = widths[i]
                blocks = [BasicBlock(cin, widths[i], stride, previous, previous if dilate_second else 1)]
                blocks += [BasicBlock(widths[i], widths[i], 1, dilation, dilation if dilate_second else 1)
                           for _ in range(depths[i] - 1)]
            setattr(self, names[i], nn.Sequential(*blocks))
            self.out_channels[names[i]] = cin = cout
        self._names = names

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for name in self._names:
            x = getattr(self, name)(x)
            if name in self.returns:
                out[name] = x
        return out
