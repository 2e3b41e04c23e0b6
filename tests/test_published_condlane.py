"""CondLaneNet as published: the official mmdetection fork's ResNet, TransConvFPN and CondLaneHead (imported
file by file with mmcv stand-ins, see ``oracles._mmdet_fork``) built with the CULane small / medium
configurations. Every checkpoint key name and shape of those modules is checked against the converter; at
800x320 with seeded random weights the heads, the per-proposal dynamic-convolution outputs and row ranges, and
the lanes of the implementation's post-processor and CULane writer are compared with the project's."""
import numpy as np
import pytest
import torch
from torch import nn

from oracles import condlanenet_reference, cuda_calls_on_cpu, randomize
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset
from selfocus_ext.decoders.published_keypoint import MASK_BIAS, grouped_dynamic_conv


def reference(depth: int, mask_size=(40, 100), grid32=(10, 25)):
    """The detector's three modules with the CULane configuration's arguments."""
    r = condlanenet_reference()
    net = nn.Module()
    with cuda_calls_on_cpu():
        net.backbone = r.ResNet(depth=depth, strides=(1, 2, 2, 2), num_stages=4, out_indices=(0, 1, 2, 3),
                                frozen_stages=1, norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True,
                                style="pytorch")
        net.neck = r.TransConvFPN(in_channels=[128, 256, 64], out_channels=64, num_outs=3, trans_idx=-1,
                                  trans_cfg=dict(in_dim=512, attn_in_dims=[512, 64], attn_out_dims=[64, 64],
                                                 strides=[1, 1], ratios=[4, 4], pos_shape=(1, *grid32)))
        net.bbox_head = r.CondLaneHead(
            heads=dict(hm=1), in_channels=(64,), num_classes=1, head_channels=64, head_layers=1,
            disable_coords=False, branch_in_channels=64, branch_channels=64, branch_out_channels=64,
            reg_branch_channels=64, branch_num_conv=1, hm_idx=1, mask_idx=0, compute_locations_pre=True,
            location_configs=dict(size=(1, 1, *mask_size), device="cpu"))
    return net


def write_checkpoint(net, path):
    torch.save({"meta": {"epoch": 16}, "state_dict": net.state_dict(), "optimizer": {}}, path)


@pytest.mark.parametrize("name,depth", [("condlane-r18", 18), ("condlane-r34", 34)])
def test_every_key_and_shape_of_the_implementation_loads(name, depth, tmp_path):
    ref = randomize(reference(depth), seed=3)
    write_checkpoint(ref, tmp_path / "latest.pth")
    ours = models.load(name, checkpoint=str(tmp_path / "latest.pth"))  # a missing/unexpected/mis-shaped key raises
    theirs = ref.state_dict()
    mine = ours.state_dict()
    assert set(mine) <= set(theirs)
    unused = sorted(set(theirs) - set(mine))
    assert unused == sorted(k for k in theirs if k.startswith("neck.fpn_convs.2.")), unused  # the unread stride-32 output
    for k, v in mine.items():
        want = theirs[k].flip(1) if k == "backbone.conv1.weight" else theirs[k]  # BGR -> RGB input
        assert v.shape == want.shape, k
        torch.testing.assert_close(v, want, rtol=0, atol=0, msg=k)


def test_heads_and_lanes_match_the_implementation(tmp_path):
    r = condlanenet_reference()
    ref = randomize(reference(18), seed=5, gain=0.5)
    ds = SyntheticLaneDataset(2, seed=7, model_input=models.published.published("condlane-r18").build().model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    with torch.no_grad():  # a heatmap with spread: about one cell in ten above 0.5 (random weights give ~constant)
        out = ref.bbox_head.ctnet_head.hm[2]
        hm = ref.bbox_head.ctnet_head(ref.neck(ref.backbone(x[:, [2, 1, 0]]))[0][1])["hm"]
        out.weight.mul_(2.0 / hm.std())
        out.bias.mul_(2.0 / hm.std())
        hm = ref.bbox_head.ctnet_head(ref.neck(ref.backbone(x[:, [2, 1, 0]]))[0][1])["hm"]
        out.bias.sub_(hm.flatten().quantile(0.9))
        # and row ranges that cover most rows
        outs, _ = ref.neck(ref.backbone(x[:1, [2, 1, 0]]))
        with cuda_calls_on_cpu():
            seeds, _ = ref.bbox_head.forward_test(outs, None, 0.5)
        margin = torch.cat([s["range"][0, 1] - s["range"][0, 0] for s in seeds])
        ref.bbox_head.mlp.layers[1].bias[1] -= margin.quantile(0.3)
    write_checkpoint(ref, tmp_path / "latest.pth")
    ours = models.load("condlane-r18", checkpoint=str(tmp_path / "latest.pth"))
    post = object.__new__(r.PostProcessor)  # its constructor builds a constant on 'cuda:0'
    post.__dict__.update(hm_thr=0.5, min_points=5, hm_downscale=16, mask_downscale=8, use_offset=True,
                         horizontal_id=[5], nms_groups=[[1]], nms_thr=4)
    post.pos = post.compute_locations((1, 40, 100), device="cpu").repeat(100, 1, 1)
    with torch.no_grad():
        got = ours(x)
        theirs_lanes, their_heads = [], []
        n_seeds = 0
        for b in range(2):
            xb = x[b:b + 1, [2, 1, 0]]  # the implementation reads BGR
            outs, _ = ref.neck(ref.backbone(xb))
            z = ref.bbox_head.ctnet_head(outs[1])
            torch.testing.assert_close(got["hm"][b:b + 1], z["hm"], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(got["params"][b:b + 1], z["params"], rtol=1e-4, atol=1e-4)
            features = ref.bbox_head.mask_branch(outs[0])
            torch.testing.assert_close(got["features"][b:b + 1], features, rtol=1e-4, atol=1e-4)
            their_heads.append((z["hm"], z["params"], features))
            with cuda_calls_on_cpu():
                seeds, _ = ref.bbox_head.forward_test(outs, None, 0.5)
            n_seeds += len(seeds)
            for s in seeds:  # per proposal: its dynamic convolutions and its row range
                c, rr = s["coord"]
                cell = int(rr) * 50 + int(c)
                p = got["params"][b].flatten(1)[:, cell][None]
                torch.testing.assert_close(grouped_dynamic_conv(got["features"][b:b + 1], p[:, :67]), s["mask"][0:1],
                                           rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(grouped_dynamic_conv(got["features"][b:b + 1], p[:, 67:]), s["reg"][0:1],
                                           rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(got["range"][b, cell].t(), s["range"][0], rtol=1e-4, atol=1e-4)
            lanes, _ = post(seeds, 8)
            theirs_lanes.append(r.adjust_result(lanes=lanes, crop_bbox=[0, 270, 1640, 590], img_shape=(320, 800, 3)))
    # the project's decoding of the implementation's own head tensors (the row ranges, which it computes per
    # proposal inside its post-processing, are the project's: equal within float tolerance, checked above)
    hm, params, features = (torch.cat(t) for t in zip(*their_heads))
    mine, _ = ours.decode_points({"hm": hm, "params": params, "features": features, "range": got["range"]})
    assert n_seeds > 0 and sum(len(l) for l in theirs_lanes) >= 2, "the comparison needs proposals and lanes"
    print("lanes compared:", [len(l) for l in theirs_lanes], "proposals:", n_seeds)
    for a_img, b_img in zip(theirs_lanes, mine):
        assert len(a_img) == len(b_img)
        for a, b in zip(a_img, b_img):
            np.testing.assert_array_equal(np.array(a, np.float64), b)
    # the files its CULane test script writes (out_result), character for character
    for i, (a_img, b_img) in enumerate(zip(theirs_lanes, mine)):
        r.out_result(a_img, dst=str(tmp_path / f"{i}.lines.txt"))
        assert ours.lines_text(b_img) == (tmp_path / f"{i}.lines.txt").read_text()


def test_mask_bias_is_the_published_prior():
    assert MASK_BIAS == 2.19
