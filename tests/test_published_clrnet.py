"""CLRNet as published: the implementation's backbone wrapper, FPN and head with seeded random weights
(mmcv's ConvModule stood in by a replica in the test harness), the checkpoint in its own layout
({'net': ...} with DataParallel's ``module.``) loaded through the converter, heads compared at 800x320 on the
cropped CULane frame (the reference fed BGR, as it reads images), and decoded lanes compared with its
``get_lanes`` (its CUDA NMS replaced by the kernel port) before its spline resampling."""
import os
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from oracles import clrnet_reference, randomize, reference_dir, source_function
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset


def reference(backbone):
    Wrapper, FPN, Head, _ = clrnet_reference()
    cfg = SimpleNamespace(img_w=800, img_h=320, num_classes=5, bg_weight=0.4, ignore_label=255, max_lanes=4,
                          ori_img_h=590, ori_img_w=1640, cut_height=270,
                          test_parameters=SimpleNamespace(conf_threshold=0.4, nms_thres=50, nms_topk=4))
    net = nn.Module()
    net.backbone = Wrapper(resnet=backbone, pretrained=False, replace_stride_with_dilation=[False] * 3,
                           out_conv=False, cfg=cfg)
    net.neck = FPN(in_channels=[128, 256, 512], out_channels=64, num_outs=3, attention=False, cfg=cfg)
    net.heads = Head(num_priors=192, refine_layers=3, fc_hidden_dim=64, sample_points=36, cfg=cfg)
    return net


@pytest.mark.parametrize("name,backbone", [("clrnet-r18", "resnet18"), ("clrnet-r34", "resnet34")])
def test_heads_and_lanes_match_the_implementation(name, backbone, tmp_path):
    ref = randomize(reference(backbone), seed=9, gain=0.5)
    path = tmp_path / "best.pth"
    torch.save({"net": {f"module.{k}": v for k, v in ref.state_dict().items()}, "optimizer": {}}, path)
    ours = models.load(name, checkpoint=str(path))
    ds = SyntheticLaneDataset(2, seed=2, model_input=ours.model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    with torch.no_grad():
        want = ref.heads(ref.neck(ref.backbone(x[:, [2, 1, 0]])))
        got = ours(x)
    torch.testing.assert_close(got["cls"], want[..., :2], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got["lanes"], want[..., 2:], rtol=1e-4, atol=1e-4)

    # decoded lanes from plausible predictions: the priors' own lines, confident ones, with lengths
    gen = torch.Generator().manual_seed(4)
    B, P = want.shape[:2]
    lanes = ours.refine.priors[:, 2:].expand(B, -1, -1).clone()
    lanes[..., 3] = 0.3 + 0.7 * torch.rand(B, P, generator=gen)
    lanes[..., 4:] += torch.randn(B, P, 72, generator=gen) * 0.002
    cls = torch.stack([torch.zeros(B, P), torch.randn(B, P, generator=gen) * 3], -1)
    theirs = ref.heads.get_lanes(torch.cat([cls, lanes], -1).clone())
    mine, _ = ours.decode_points({"cls": cls, "lanes": lanes})
    assert sum(len(l) for l in theirs) >= 3, "the comparison needs decoded lanes"
    # what its CULane writer writes: each lane's spline read every 8 rows from 270, inside the image
    ys = np.arange(270, 590, 8) / 590
    for a_img, b_img in zip(theirs, mine):
        written = []
        for a in a_img:
            xs = a(ys.copy())
            keep = (xs >= 0) & (xs < 1)
            if keep.any():
                written.append(np.stack([(xs * 1640)[keep][::-1], (ys[keep] * 590)[::-1]], 1))
        assert len(written) == len(b_img)
        for a, b in zip(written, b_img):
            np.testing.assert_array_equal(a, b)
    root = reference_dir("Turoad-CLRNet")
    text = source_function(os.path.join(root, "clrnet", "datasets", "culane.py"), "get_prediction_string",
                           cls="CULane", np=np)
    dataset = types.SimpleNamespace(cfg=types.SimpleNamespace(ori_img_h=590, ori_img_w=1640))
    for a_img, b_img in zip(theirs, mine):
        assert ours.lines_text(b_img) == text(dataset, a_img)
