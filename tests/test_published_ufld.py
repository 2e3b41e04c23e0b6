"""Ultra-Fast-Lane-Detection v1 as published: the official parsingNet with seeded random weights (its
training-only auxiliary branch included in the checkpoint), loaded through the converter; the classifier
output compared at 800x288 and the decoded lanes with the official CULane writer's lines files."""
import os

import numpy as np
import pytest
import torch

from oracles import randomize, ultra_fast_lane_detection
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset


def read_lines(path):
    lanes = []
    with open(path) as f:
        for line in f:
            v = [float(t) for t in line.split()]
            if v:
                lanes.append(np.array(v, np.float64).reshape(-1, 2))
    return lanes


@pytest.mark.parametrize("name,depth", [("ufld-r18", "18"), ("ufld-r34", "34")])
def test_outputs_and_lanes_match_the_implementation(name, depth, tmp_path):
    net, generate_lines = ultra_fast_lane_detection()
    ref = randomize(net(pretrained=False, backbone=depth, cls_dim=(201, 18, 4), use_aux=True), seed=2)
    path = tmp_path / "ep049.pth"
    torch.save({"model": {f"module.{k}": v for k, v in ref.state_dict().items()}, "optimizer": {}}, path)
    ours = models.load(name, checkpoint=str(path))
    ds = SyntheticLaneDataset(2, seed=5, model_input=ours.model_input)
    x = torch.stack([ds[i]["image"] for i in range(2)])
    ref.use_aux = False  # the inference path
    with torch.no_grad():
        want, got = ref(x), ours(x)
    torch.testing.assert_close(got["loc"], want[:, :200], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got["exist"], torch.logsumexp(want[:, :200], 1) - want[:, 200], rtol=1e-4, atol=1e-4)

    # random weights put "absent" everywhere or nowhere: spread the logits so that both occur
    logits = want / want.std() * 3.0
    logits[:, 200] += torch.linspace(-4, 4, 18)[None, :, None]
    outputs = {"loc": logits[:, :200], "exist": torch.logsumexp(logits[:, :200], 1) - logits[:, 200]}
    names = [f"driver_00/{i:05d}.jpg" for i in range(len(x))]
    generate_lines(logits, (288, 800), names, str(tmp_path), 200, localization_type="rel", flip_updown=True)
    images, _ = ours.decode_points(outputs)
    compared = 0
    for name_i, mine in zip(names, images):
        theirs = read_lines(os.path.join(tmp_path, name_i[:-3] + "lines.txt"))
        assert len(theirs) == len(mine)
        for a, b in zip(theirs, mine):
            np.testing.assert_array_equal(a, b)
            compared += 1
        # the written file itself, character for character
        assert ours.lines_text(mine) == open(os.path.join(tmp_path, name_i[:-3] + "lines.txt")).read()
    assert compared >= 2
