"""Each published model's input from an image file, against its implementation's own test transform.

The implementations' transform code runs where it imports here (pytorch-auto-drive's functional module,
torchvision's transforms for UFLD, the official RESA's transforms); CLRNet's and the official LaneATT's
imgaug ``Resize`` and the mmdetection forks' albumentations ``Resize`` and mmcv ``imnormalize`` are not
installed, so their documented calls are made directly (imgaug resizes uint8 images with OpenCV's
INTER_CUBIC by default; albumentations' Resize uses INTER_LINEAR; mmcv normalises with OpenCV's float32
subtract and multiply). Every comparison is exact: both sides run the same library calls.
"""
import dataclasses

import cv2
import numpy as np
import pytest
import torch

from selfocus_ext.lanes import preprocess
from selfocus_ext.lanes.frames import CULANE, ModelInput
from selfocus_ext.models import published
from selfocus_ext.models.published.laneatt import OFFICIAL_LAYOUT

from oracles import import_torchvision, pad_transforms, resa_transforms

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def culane_image(tmp_path_factory):
    """A 1640x590 JPEG with smooth gradients, edges and noise (every interpolation's rounding is exercised)."""
    h, w = CULANE.height, CULANE.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    img = np.stack([xx / w * 255, yy / h * 255, (np.sin(xx / 17) * np.cos(yy / 11) + 1) * 127], -1)
    img += rng.normal(0, 20, img.shape)
    img[200:260, 300:900] = (250, 10, 120)
    path = str(tmp_path_factory.mktemp("culane") / "00000.jpg")
    assert cv2.imwrite(path, np.clip(img, 0, 255).astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def chain_of(entry) -> str:
    if entry.name.endswith("-official"):
        return "resa-official"
    return {"clrnet": "clrnet", "condlane": "mmdet", "ganet": "mmdet", "ufld": "ufld", "laneatt": "pad-unnormalised"
            }.get(entry.family, "pad")


def reference_input(chain: str, path: str, size, crop: int) -> torch.Tensor:
    """The implementation's input tensor for the image file (RGB channel order, [3, h, w])."""
    w, h = size
    if chain in ("pad", "pad-unnormalised"):  # utils/datasets/*: PIL RGB; test_288 / test_360 augmentations
        from PIL import Image

        F = pad_transforms()
        img = F.resize(Image.open(path).convert("RGB"), [h, w], interpolation=Image.BILINEAR)
        t = F.to_tensor(img)
        return F.normalize(t, *IMAGENET) if chain == "pad" else t
    if chain == "ufld":  # data/dataloader.py get_test_loader, data/dataset.py loader_func (Image.open)
        from PIL import Image

        T = import_torchvision().transforms
        tf = T.Compose([T.Resize((h, w)), T.ToTensor(), T.Normalize(*IMAGENET)])
        return tf(Image.open(path))
    bgr = cv2.imread(path)
    if chain == "resa-official":  # datasets/base_dataset.py, datasets/culane.py transform_val
        tf = resa_transforms()
        img = bgr.astype(np.float32)[crop:]
        img, = tf.SampleResize((w, h))((img,))
        img, = tf.GroupNormalize(mean=([103.939, 116.779, 123.68], (0,)), std=([1.0, 1.0, 1.0], (1,)))((img,))
        out = torch.from_numpy(img).permute(2, 0, 1).contiguous().float()
    elif chain == "clrnet":  # base_dataset.__getitem__, GenerateLaneLine (imgaug Resize), img / 255.
        img = cv2.resize(bgr[crop:], (w, h), interpolation=cv2.INTER_CUBIC)
        out = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)
    elif chain == "laneatt-official":  # lib/datasets/lane_dataset.py __getitem__ (normalize: false)
        img = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_CUBIC) / 255.0
        out = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)
    elif chain == "mmdet":  # Crop + albumentations Resize, then mmcv Normalize (to_rgb=False)
        img = cv2.resize(bgr[crop:], (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        cv2.subtract(img, np.float64([[75.3, 76.6, 77.6]]), img)
        cv2.multiply(img, 1 / np.float64([[50.5, 53.8, 54.3]]), img)
        out = torch.from_numpy(img).permute(2, 0, 1)
    else:
        raise AssertionError(chain)
    return out.flip(0).contiguous()  # BGR -> RGB: the project's converted first convolution reads RGB


CASES = [(e.name, chain_of(e)) for e in published.catalog()] + [("laneatt-r18", "laneatt-official")]


@pytest.mark.parametrize("name,chain", CASES, ids=[f"{n}/{c}" for n, c in CASES])
def test_the_input_is_the_implementations(name, chain, culane_image):
    mi = published.published(name).build().model_input
    if chain == "laneatt-official":
        mi = dataclasses.replace(mi, **dict(OFFICIAL_LAYOUT.input))
    ours = mi.load(culane_image)
    ref = reference_input(chain, culane_image, mi.size, int(mi.crop_top))
    assert ours.shape == ref.shape == (3, mi.size[1], mi.size[0])
    assert ours.dtype == ref.dtype == torch.float32
    assert torch.equal(ours, ref), f"{name}/{chain}: max |diff| {float((ours - ref).abs().max())}"


def test_the_readers_decode_as_their_libraries(culane_image):
    from PIL import Image

    assert np.array_equal(preprocess.read_image(culane_image, "pil"), np.asarray(Image.open(culane_image)))
    assert np.array_equal(preprocess.read_image(culane_image, "cv2"), cv2.imread(culane_image)[..., ::-1])


def test_bad_choices_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"ModelInput resize: expected one of \['area', .*got 'bicubic'"):
        ModelInput(CULANE, resize="bicubic")
    with pytest.raises(ValueError, match=r"ModelInput reader: expected one of \['cv2', 'pil'\], got 'imageio'"):
        ModelInput(CULANE, reader="imageio")
    with pytest.raises(ValueError, match="ModelInput arithmetic"):
        ModelInput(CULANE, arithmetic="float16")
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not a jpeg")
    for reader in preprocess.READERS:
        with pytest.raises(ValueError, match="cannot decode image .*x.jpg"):
            ModelInput(CULANE, reader=reader).load(str(bad))


def test_the_zoo_input_is_unchanged():
    """The zoo's models keep their transform (OpenCV, INTER_AREA, float32 ImageNet normalisation)."""
    from selfocus_ext.models import DEFAULT_INPUT

    assert (DEFAULT_INPUT.reader, DEFAULT_INPUT.resize, DEFAULT_INPUT.arithmetic) == ("cv2", "area", "float32")
    img = np.random.default_rng(1).integers(0, 256, (590, 1640, 3), dtype=np.uint8)
    small = cv2.resize(img[270:], (400, 160), interpolation=cv2.INTER_AREA)
    expect = (torch.from_numpy(small).permute(2, 0, 1).float().div(255) - torch.tensor(IMAGENET[0])[:, None, None]) \
        / torch.tensor(IMAGENET[1])[:, None, None]
    assert torch.equal(DEFAULT_INPUT(img), expect)
