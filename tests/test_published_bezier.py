"""BezierLaneNet as published (pytorch-auto-drive): the reference module with seeded random weights (its
DCNv2 computed by the project's plain-torch reference op in mmcv's place, its auxiliary segmentation head
in the checkpoint), loaded through the converter; heads compared at 800x288 and decoded lanes with the
implementation's own post-processing."""
import numpy as np
import pytest
import torch

from oracles import pad_config, pytorch_auto_drive, randomize, PadInference, pad_written_lines
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset


@pytest.mark.parametrize("name,config", [("bezier-r18", "configs/lane_detection/bezierlanenet/resnet18_culane_aug1b.py"),
                                         ("bezier-r34", "configs/lane_detection/bezierlanenet/resnet34_culane_aug1b.py")])
def test_heads_and_lanes_match_the_implementation(name, config, tmp_path):
    pad = pytorch_auto_drive()
    cfg = pad_config(config)
    spec = dict(cfg["model"])
    spec["backbone_cfg"] = dict(spec["backbone_cfg"], pretrained=False)
    ref = randomize(pad.MODELS.from_dict(spec), seed=8)
    with torch.no_grad():  # offsets of a few pixels, so the deformable sampling is exercised
        ref.simple_flip_2d.proj2_conv.conv_offset.weight.mul_(20)
    path = tmp_path / "model.pt"
    torch.save({"model": ref.state_dict()}, path)
    ours = models.load(name, checkpoint=str(path))
    ds = SyntheticLaneDataset(2, seed=6, model_input=ours.model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    with torch.no_grad():
        want, got = ref(x), ours(x)
    torch.testing.assert_close(got["logits"], want["logits"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got["curves"], want["curves"], rtol=1e-4, atol=1e-4)

    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(want["logits"].shape, generator=gen) * 4 + 3
    outputs = {"logits": logits, "curves": want["curves"] * 0.1 + torch.rand(want["curves"].shape, generator=gen)}
    test = cfg["test"]
    theirs = ref.inference(dict(outputs), [tuple(test["input_size"]), tuple(test["original_size"])], test["gap"],
                           test["ppl"], "culane", max_lane=test["max_lane"], forward=False)
    mine, _ = ours.decode_points(outputs)
    assert sum(len(l) for l in theirs) >= 3, "the comparison needs decoded lanes"
    for a_img, b_img in zip(theirs, mine):
        assert len(a_img) == len(b_img)
        for a, b in zip(a_img, b_img):
            np.testing.assert_array_equal(np.asarray(a, np.float64), b)

    texts = pad_written_lines(PadInference(ref, outputs), len(mine), [tuple(test["input_size"]), tuple(test["original_size"])],
                              test["gap"], test["ppl"], test["thresh"], False, test["max_lane"], tmp_path)
    assert [ours.lines_text(lanes) for lanes in mine] == texts
