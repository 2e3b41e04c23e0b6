"""SCNN and RESA as published (pytorch-auto-drive): the reference module with seeded random weights, its
checkpoint in the implementation's own layout loaded through the project's converter, head outputs compared
at the real input size (800x288) on generated scenes, and decoded lanes compared with the implementation's
own post-processing (identical points)."""
import numpy as np
import pytest
import torch

from oracles import pad_config, pytorch_auto_drive, randomize, pad_written_lines
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset

CASES = [("scnn-r18", "configs/lane_detection/scnn/resnet18_culane.py"),
         ("scnn-r34", "configs/lane_detection/scnn/resnet34_culane.py"),
         ("resa-r18", "configs/lane_detection/resa/resnet18_culane.py"),
         ("resa-r34", "configs/lane_detection/resa/resnet34_culane.py")]


def reference_model(config: str):
    pad = pytorch_auto_drive()
    cfg = pad_config(config)
    spec = dict(cfg["model"])
    spec["backbone_cfg"] = dict(spec["backbone_cfg"], pretrained=False)
    return pad.MODELS.from_dict(spec), cfg["test"]


def scenes(model, n=3):
    ds = SyntheticLaneDataset(n, seed=7, model_input=model.model_input)
    return torch.stack([ds[i]["image"] for i in range(n)])


@pytest.mark.parametrize("name,config", CASES)
def test_heads_and_lanes_match_the_implementation(name, config, tmp_path):
    ref, test_cfg = reference_model(config)
    randomize(ref, seed=1)
    path = tmp_path / "model.pt"
    torch.save({"model": ref.state_dict(), "optimizer": {}, "epoch": 12}, path)  # the implementation's layout
    ours = models.load(name, checkpoint=str(path))
    x = scenes(ours)
    with torch.no_grad():
        want, got = ref(x), ours(x)
    for key in ("out", "lane"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-4)

    from pad_ref.lane_det_utils import lane_as_segmentation_inference
    # random weights give flat maps and existence logits near 0: sharpen the maps and shift the logits so
    # that points pass the threshold and some slots are kept, some not
    out = want["out"] - want["out"].mean(dim=(2, 3), keepdim=True)
    outputs = {"out": out / out.std() * 4.0,
               "lane": want["lane"] * 4.0 + torch.tensor([2.0, -2.0, 1.0, 0.5])}
    lanes = lane_as_segmentation_inference(None, outputs, [tuple(test_cfg["input_size"]),
                                                          tuple(test_cfg["original_size"])],
                                           test_cfg["gap"], test_cfg["ppl"], test_cfg["thresh"], "culane",
                                           max_lane=test_cfg["max_lane"], forward=False)
    images, _ = ours.decode_points(outputs)
    assert sum(len(l) for l in lanes) >= 3, "the comparison needs decoded lanes"
    for theirs, mine in zip(lanes, images):
        assert len(theirs) == len(mine)
        for a, b in zip(theirs, mine):
            np.testing.assert_array_equal(np.asarray(a, np.float64), b)
    # the files the implementation's tester writes for these outputs, character for character
    texts = pad_written_lines(lambda images: outputs, len(images), [tuple(test_cfg["input_size"]),
                              tuple(test_cfg["original_size"])], test_cfg["gap"], test_cfg["ppl"],
                              test_cfg["thresh"], True, test_cfg["max_lane"], tmp_path)
    assert [ours.lines_text(lanes) for lanes in images] == texts
