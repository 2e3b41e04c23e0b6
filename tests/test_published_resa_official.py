"""The official RESA (CULane: ResNet-50, 4 feature-shift iterations, plain decoder) built from its own
sources with seeded random weights, its checkpoint in its own layout ({'net': ...} with DataParallel's
``module.``) loaded through the converter; heads compared at 800x288 on the frame below row 240 (the
reference fed BGR), and decoded lanes with its CULane data set's ``probmap2lane`` on the same maps."""
import numpy as np
import torch
import torch.nn.functional as F

from oracles import randomize, reference_dir, resa_official, resa_official_config, source_function
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset


def test_heads_and_lanes_match_the_implementation(tmp_path):
    RESANet, CULane = resa_official()
    cfg = resa_official_config()
    ref = randomize(RESANet(cfg), seed=11, gain=0.5)
    path = tmp_path / "culane_resnet50.pth"
    torch.save({"net": {f"module.{k}": v for k, v in ref.state_dict().items()}, "optim": {}, "epoch": 12}, path)
    ours = models.load("resa-r50-official", checkpoint=str(path))
    theirs = ref.state_dict()
    assert len(ours.state_dict()) == len(theirs)  # every key used, none dropped
    ds = SyntheticLaneDataset(2, seed=3, model_input=ours.model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    with torch.no_grad():
        want = ref(x[:, [2, 1, 0]])
        got = ours(x)
    seg = F.interpolate(got["out"], size=(288, 800), mode="bilinear", align_corners=False)
    torch.testing.assert_close(seg, want["seg"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.sigmoid(got["lane"]), want["exist"], rtol=1e-4, atol=1e-4)

    # lanes: plausible maps (a bright column band per slot) through both post-processings
    gen = torch.Generator().manual_seed(2)
    out = torch.randn(2, 5, 36, 100, generator=gen)
    for s in range(1, 5):
        out[:, s, :, 20 * s:20 * s + 4] += 6.0
    lane = torch.tensor([[2.0, -1.0, 0.3, 4.0], [1.0, 1.0, -2.0, 0.7]])
    mine, _ = ours.decode_points({"out": out, "lane": lane})
    data = object.__new__(CULane)
    data.cfg, data.ori_imgh, data.ori_imgw = cfg, 590, 1640
    prob = F.softmax(F.interpolate(out, size=(288, 800), mode="bilinear", align_corners=False), dim=1).numpy()
    n = 0
    for b in range(2):
        coords = data.probmap2lane(prob[b], torch.sigmoid(lane[b]).numpy())
        theirs_lanes = [c[(c[:, 0] >= 0) | (c[:, 1] >= 0)] for c in coords]  # its writer skips (-1, -1)
        assert len(theirs_lanes) == len(mine[b])
        for a, m in zip(theirs_lanes, mine[b]):
            np.testing.assert_array_equal(a.astype(np.float64), m)
            n += 1
    assert n >= 4

    # the files its CULane evaluator writes (runner/evaluator/culane/culane.py, run from its source)
    import os
    import types

    root = reference_dir("ZJULearning-resa")
    write = source_function(os.path.join(root, "runner", "evaluator", "culane", "culane.py"), "evaluate", cls="CULane",
                            F=F, os=os, np=np, cv2=None, torch=torch)
    names = [f"/driver_00/{i:05d}.jpg" for i in range(2)]
    evaluator = types.SimpleNamespace(out_dir=str(tmp_path / "lines"), cfg=types.SimpleNamespace(view=False))
    seg = F.interpolate(out, size=(288, 800), mode="bilinear", align_corners=False)
    write(evaluator, data, {"seg": seg, "exist": torch.sigmoid(lane)},
          {"meta": {"img_name": names, "full_img_path": names}})
    for b, name in enumerate(names):
        assert ours.lines_text(mine[b]) == open(str(tmp_path / "lines") + name[:-4] + ".lines.txt").read()
