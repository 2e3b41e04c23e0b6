"""LSTR as published (pytorch-auto-drive, ResNet-18s and ResNet-34): the reference module with seeded random
weights, its checkpoint (fused attention projections) loaded through the converter, heads compared at
800x288, decoded lanes compared with the implementation's own post-processing."""
import numpy as np
import pytest
import torch

from oracles import pad_config, pytorch_auto_drive, randomize, PadInference, pad_written_lines
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset


@pytest.mark.parametrize("name,config", [("lstr-r18s", "configs/lane_detection/lstr/resnet18s_culane.py"),
                                         ("lstr-r34", "configs/lane_detection/lstr/resnet34_culane_aug.py")])
def test_heads_and_lanes_match_the_implementation(name, config, tmp_path):
    pad = pytorch_auto_drive()
    cfg = pad_config(config)
    spec = dict(cfg["model"])
    spec["backbone_cfg"] = dict(spec["backbone_cfg"], pretrained=False)
    ref = randomize(pad.MODELS.from_dict(spec), seed=3)
    path = tmp_path / "model.pt"
    torch.save({"model": ref.state_dict()}, path)
    ours = models.load(name, checkpoint=str(path))
    ds = SyntheticLaneDataset(2, seed=4, model_input=ours.model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    with torch.no_grad():
        want, got = ref(x), ours(x)
    torch.testing.assert_close(got["logits"], want["logits"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["curves"], want["curves"], rtol=1e-4, atol=1e-5)

    # plausible lanes around the reference's curves: confident queries, the pole above the image
    gen = torch.Generator().manual_seed(1)
    B, Q = want["logits"].shape[:2]
    logits = torch.stack([torch.zeros(B, Q), torch.randn(B, Q, generator=gen) * 4 + 2], -1)
    curves = want["curves"] * 0.05
    curves[..., 0] += 0.2 + 0.2 * torch.rand(B, Q, generator=gen)  # upper end
    curves[..., 1] += 0.9 + 0.2 * torch.rand(B, Q, generator=gen)  # lower end
    curves[..., 3] -= 1.0  # f'': pole above the image
    curves[..., 5] += torch.rand(B, Q, generator=gen)  # n'': horizontal position
    outputs = {"logits": logits, "curves": curves}
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
