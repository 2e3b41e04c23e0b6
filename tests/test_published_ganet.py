"""GANet as published: the official mmdetection fork's ResNet, DeformFPN (with its LanePointsConv) and
GANetHeadFast (imported file by file with mmcv stand-ins, see ``oracles._mmdet_fork``; its CUDA-only
``DeformConv1D`` computed by the project's plain-torch reference op) built with the CULane ResNet-18 / 34
configurations. Every checkpoint key name and shape is checked against the converter; at 800x320 with seeded
random weights the heads are compared, and the lanes of the implementation's post-processor and CULane writer
with the project's decoding of the same head tensors."""
import numpy as np
import pytest
import torch
from torch import nn

from oracles import cuda_calls_on_cpu, ganet_reference, randomize
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset


def reference(depth: int):
    r = ganet_reference()
    net = nn.Module()
    with cuda_calls_on_cpu():
        net.backbone = r.ResNet(depth=depth, strides=(1, 2, 2, 2), num_stages=4, out_indices=(0, 1, 2, 3),
                                frozen_stages=1, norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True,
                                style="pytorch")
        net.neck = r.DeformFPN(in_channels=[128, 256, 512], out_channels=64, dcn_point_num=[7, 5, 3],
                               deconv_layer=[True, False, False], deconv_before=False, trans_idx=-1,
                               dcn_only_cls=True,
                               trans_cfg=dict(in_dim=512, attn_in_dims=[512, 64], attn_out_dims=[64, 64],
                                              strides=[1, 1], ratios=[4, 4], pos_shape=[1, 10, 25]))
        net.bbox_head = r.GANetHeadFast(heads=dict(hm=1), in_channels=64, branch_in_channels=64, num_classes=1,
                                        hm_idx=0, joint_nums=1)
    return net


def heads(net, x):
    out = net.neck(net.backbone(x))
    return out, net.bbox_head.forward_train(out["features"], out["aux_feat"])


def write_checkpoint(net, path):
    torch.save({"meta": {"epoch": 60}, "state_dict": net.state_dict()}, path)


@pytest.mark.parametrize("name,depth", [("ganet-r18", 18), ("ganet-r34", 34)])
def test_every_key_and_shape_of_the_implementation_loads(name, depth, tmp_path):
    ref = randomize(reference(depth), seed=3)
    write_checkpoint(ref, tmp_path / "latest.pth")
    ours = models.load(name, checkpoint=str(tmp_path / "latest.pth"))  # a missing/unexpected/mis-shaped key raises
    theirs, mine = ref.state_dict(), ours.state_dict()
    assert set(mine) <= set(theirs)
    unused = {k.split(".")[0] + "." + k.split(".")[1] + ("." + k.split(".")[2] if k.startswith("neck") else "")
              for k in set(theirs) - set(mine)}
    # what no test-time output reads: the centre heatmap, the coarser levels' blocks and outputs, the refinement
    assert unused == {"bbox_head.centerpts_head", "neck.def_convs.1", "neck.def_convs.2", "neck.fpn_convs.1",
                      "neck.fpn_convs.2", "neck.def_convs.0"}, unused
    assert {k for k in set(theirs) - set(mine) if k.startswith("neck.def_convs.0.")} == {
        "neck.def_convs.0.reppoints_pts_refine_conv.weight", "neck.def_convs.0.reppoints_pts_refine_out.weight",
        "neck.def_convs.0.reppoints_pts_refine_out.bias"}
    for k, v in mine.items():
        want = theirs[k].flip(1) if k == "backbone.conv1.weight" else theirs[k]  # BGR -> RGB input
        assert v.shape == want.shape, k
        torch.testing.assert_close(v, want, rtol=0, atol=0, msg=k)


def test_heads_and_lanes_match_the_implementation(tmp_path, monkeypatch):
    r = ganet_reference()
    coordmat = r.head_module.make_coordmat
    monkeypatch.setattr(r.head_module, "make_coordmat", lambda shape, device=None: coordmat(shape, device="cpu"))
    ref = randomize(reference(18), seed=5, gain=0.5)
    ds = SyntheticLaneDataset(2, seed=7, model_input=models.published.published("ganet-r18").build().model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    bgr = x[:, [2, 1, 0]]  # the implementation reads BGR
    with torch.no_grad():  # key points on about one pixel in twenty, start offsets of a few pixels
        _, (_, kpts, offset, _) = heads(ref, bgr)
        hm, off = ref.bbox_head.keypts_head.hm[2], ref.bbox_head.offset_head.offset_map[2]
        hm.weight.mul_(2.0 / kpts.std())
        hm.bias.mul_(2.0 / kpts.std())
        off.weight.mul_(3.0 / offset.std())
        off.bias.mul_(3.0 / offset.std())
        _, (_, kpts, _, _) = heads(ref, bgr)
        hm.bias.sub_(kpts.flatten().quantile(0.95))
    write_checkpoint(ref, tmp_path / "latest.pth")
    ours = models.load("ganet-r18", checkpoint=str(tmp_path / "latest.pth"))
    post = r.PostProcessor(use_offset=True, cluster_thr=3, cluster_by_center_thr=5, group_fast=True)
    with torch.no_grad():
        got = ours(x)
        theirs_lanes, their_heads = [], []
        for b in range(2):
            out, (_, kpts, offset, error) = heads(ref, bgr[b:b + 1])
            torch.testing.assert_close(got["kpts_hm"][b:b + 1], kpts, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(got["pts_offset"][b:b + 1], offset, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(got["int_offset"][b:b + 1], error, rtol=1e-4, atol=1e-4)
            their_heads.append((kpts, offset, error))
            seeds = ref.bbox_head.forward_test(out["features"], out["aux_feat"], None, 0.4, 0.4, 0.3)
            lanes, centers = post(seeds, 8)
            result, _, _ = r.adjust_result(lanes=lanes, centers=centers, crop_bbox=(0, 270, 1640, 590),
                                           img_shape=(320, 800, 3), points_thr=10)
            theirs_lanes.append(result)
    kpts, offset, error = (torch.cat(t) for t in zip(*their_heads))
    mine, _ = ours.decode_points({"kpts_hm": kpts, "pts_offset": offset, "int_offset": error})
    assert sum(len(l) for l in theirs_lanes) >= 2, "the comparison needs lanes"
    print("lanes compared:", [len(l) for l in theirs_lanes])
    for a_img, b_img in zip(theirs_lanes, mine):
        assert len(a_img) == len(b_img)
        for a, b in zip(a_img, b_img):
            np.testing.assert_array_equal(np.array(a, np.float64), b)
    # the files its CULane test script writes (out_result), character for character
    for i, (a_img, b_img) in enumerate(zip(theirs_lanes, mine)):
        r.out_result(a_img, dst=str(tmp_path / f"{i}.lines.txt"))
        assert ours.lines_text(b_img) == (tmp_path / f"{i}.lines.txt").read_text()
