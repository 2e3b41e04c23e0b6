"""LaneATT as published: pytorch-auto-drive's and the official module with seeded random weights and the
implementations' own anchor frequency file, their checkpoints loaded through the converter (both layouts),
proposals compared at 640x360, and decoded lanes and written lines files compared with each implementation's
post-processing and writer (their CUDA line NMS replaced by a plain-Python port of the kernel; the official
one resamples every lane with a spline on each pixel row before writing it)."""
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from oracles import (laneatt_official, line_nms_kernel_port, pad_config, pad_written_lines, pytorch_auto_drive, randomize,
                     reference_dir, source_function)
from selfocus_ext import models
from selfocus_ext.data.datasets import SyntheticLaneDataset
from selfocus_ext.ops import reference
from selfocus_ext.ops.lanes import line_nms


def scenes(model, n=2):
    ds = SyntheticLaneDataset(n, seed=3, model_input=model.model_input)
    return torch.stack([ds[i]["image"] for i in range(n)])


@pytest.mark.parametrize("name,config", [("laneatt-r18", "configs/lane_detection/laneatt/resnet18_culane.py"),
                                         ("laneatt-r34", "configs/lane_detection/laneatt/resnet34_culane.py")])
def test_pytorch_auto_drive_proposals_and_lanes(name, config, tmp_path, monkeypatch):
    pad = pytorch_auto_drive()
    _, freq = laneatt_official()
    cfg = pad_config(config)
    spec = dict(cfg["model"], anchor_freq_path=freq)
    spec["backbone_cfg"] = dict(spec["backbone_cfg"], pretrained=False)
    ref = randomize(pad.MODELS.from_dict(spec), seed=5)
    path = tmp_path / "model.pt"
    torch.save({"model": ref.state_dict()}, path)
    ours = models.load(name, checkpoint=str(path), anchors=freq)
    x = scenes(ours)
    with torch.no_grad():
        want, got = ref(x), ours(x)
    torch.testing.assert_close(got["cls"], want["logits"], rtol=1e-4, atol=1e-4)
    props = ours.proposals(got)
    torch.testing.assert_close(props[..., 0], want["starts"])
    torch.testing.assert_close(props[..., 1], want["lengths"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(props[..., 2:], want["offsets"], rtol=1e-4, atol=1e-3)

    # decode the reference's own outputs both ways; confident, long proposals so that lanes survive
    gen = torch.Generator().manual_seed(0)
    logits = want["logits"] * 50 + torch.randn(want["logits"].shape, generator=gen)
    reg = torch.cat([want["lengths"][..., None] - ours.anchors[:, 1, None] + 40 * torch.rand(want["lengths"].shape + (1,),
                     generator=gen), want["offsets"] - ours.anchors[:, 2:]], -1)
    outputs = {"cls": logits, "reg": reg}
    theirs_in = {"logits": logits.clone(), "starts": ours.proposals(outputs)[..., 0].clone(),
                 "lengths": ours.proposals(outputs)[..., 1].clone(), "offsets": ours.proposals(outputs)[..., 2:].clone()}
    lane_module = __import__("pad_ref.models.lane_detection.laneatt", fromlist=["x"])
    monkeypatch.setattr(lane_module, "line_nms", line_nms_kernel_port, raising=False)
    fresh = {k: v.clone() for k, v in theirs_in.items()}
    theirs = ref.inference(theirs_in, [(360, 640), (590, 1640)], False, None, "culane")
    mine, _ = ours.decode_points(outputs)
    assert sum(len(l) for l in theirs) >= 2, "the comparison needs decoded lanes"
    for a_img, b_img in zip(theirs, mine):
        assert len(a_img) == len(b_img)
        for a, b in zip(a_img, b_img):
            np.testing.assert_array_equal(np.asarray(a, np.float64), b)

    class Tester:  # the tester passes (images, input_sizes, gap, ppl, dataset, max_lane)
        def inference(self, images, input_sizes, gap, ppl, dataset, max_lane):
            return ref.inference(fresh, input_sizes, False, ppl, dataset, max_lane)

    texts = pad_written_lines(Tester(), len(mine), [(360, 640), (590, 1640)], None, None, None, False, 0, tmp_path)
    assert [ours.lines_text(lanes) for lanes in mine] == texts


@pytest.mark.parametrize("name,backbone", [("laneatt-r18", "resnet18"), ("laneatt-r34", "resnet34")])
def test_official_layout_and_length_convention(name, backbone, tmp_path):
    LaneATT, freq = laneatt_official()
    ref = randomize(LaneATT(backbone=backbone, pretrained_backbone=False, S=72, img_w=640, img_h=360,
                            anchors_freq_path=freq, topk_anchors=1000), seed=6)
    ref.nms = lambda proposals, *args: proposals  # the raw proposals [B, A, 5 + 72], before suppression
    path = tmp_path / "model_0015.pt"
    torch.save({"epoch": 15, "model": ref.state_dict(), "optimizer": {}}, path)
    ours = models.load(name, checkpoint=str(path), anchors=freq)
    assert float(ours.length_adds_start_x) == 0.0
    x = scenes(ours)
    with torch.no_grad():  # the official model reads BGR images (OpenCV); the project feeds RGB
        want, got = ref(x[:, [2, 1, 0]]), ours(x)
    props = ours.proposals(got)
    torch.testing.assert_close(got["cls"], want[..., :2], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(props[..., 0], want[..., 2])
    torch.testing.assert_close(props[..., 1], want[..., 4], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(props[..., 2:], want[..., 5:], rtol=1e-4, atol=1e-3)


def test_official_lanes_and_lines_files(tmp_path, monkeypatch):
    """A checkpoint in the official layout decodes and writes as the official test script: its NMS on the
    same proposals, its Lane splines, its CULane get_prediction_string; and reads its images as it does."""
    LaneATT, freq = laneatt_official()
    ref = randomize(LaneATT(backbone="resnet18", pretrained_backbone=False, S=72, img_w=640, img_h=360,
                            anchors_freq_path=freq, topk_anchors=1000), seed=6)
    path = tmp_path / "model_0015.pt"
    torch.save({"epoch": 15, "model": ref.state_dict(), "optimizer": {}}, path)
    ours = models.load("laneatt-r18", checkpoint=str(path), anchors=freq)
    assert ours.official_post_processing and ours.lines_format[0] == "five-decimals"
    assert (ours.model_input.reader, ours.model_input.resize, ours.model_input.arithmetic) == \
        ("cv2", "cv2-cubic", "float64")
    with torch.no_grad():
        got = ours(scenes(ours))
    gen = torch.Generator().manual_seed(0)
    logits = got["cls"] * 50 + torch.randn(got["cls"].shape, generator=gen)
    reg = got["reg"].clone()
    reg[..., 0] += 40 * torch.rand(reg.shape[:2], generator=gen)  # long proposals
    outputs = {"cls": logits, "reg": reg}
    props = ours.proposals(outputs)  # start, length, xs
    B, A = props.shape[:2]
    # the official layout of a proposal: two class logits, start y, start x (unused here), length, xs
    official = torch.cat([logits, props[..., :1], torch.zeros(B, A, 1), props[..., 1:2], props[..., 2:]], -1)
    monkeypatch.setitem(LaneATT.nms.__globals__, "nms", lambda boxes, scores, overlap, top_k:
                        line_nms_kernel_port(boxes, scores, overlap, top_k, layout=(2, 4, 5)))
    kept = ref.nms(official, torch.zeros(B, A, 1), nms_thres=50.0, nms_topk=4, conf_threshold=0.5)
    theirs = ref.decode(kept, as_lanes=True)
    mine, _ = ours.decode_points(outputs)
    assert sum(len(l) for l in theirs) >= 2, "the comparison needs decoded lanes"
    text = source_function(os.path.join(reference_dir("lucastabelini-LaneATT"), "lib", "datasets", "culane.py"),
                           "get_prediction_string", cls="CULane", np=np)
    for a_img, b_img in zip(theirs, mine):
        assert ours.lines_text(b_img) == text(SimpleNamespace(img_h=590, img_w=1640), a_img)


def test_laneatt_needs_its_anchor_file(tmp_path):
    m = models.load("laneatt-r18", pretrained=False)
    path = tmp_path / "m.pt"
    torch.save({"model": {k: v for k, v in m.state_dict().items() if k not in ("anchor_order", "length_adds_start_x")}},
               path)
    with pytest.raises(models.published.CheckpointError, match="anchor frequency file"):
        models.load("laneatt-r18", checkpoint=str(path))
    bad = tmp_path / "freq.pt"
    torch.save(torch.ones(5), bad)
    with pytest.raises(models.published.CheckpointError, match="anchors: .* not an anchor frequency tensor"):
        models.load("laneatt-r18", checkpoint=str(path), anchors=str(bad))


def line_sets(gen, n, width=74, layout=(0, 1, 2)):
    si, li, xi = layout
    props = torch.rand(n, width, generator=gen)
    props[:, si] = torch.rand(n, generator=gen) * 0.5
    props[:, li] = torch.randint(0, 72, (n,), generator=gen).float()
    base = torch.rand(n, 1, generator=gen) * 640
    props[:, xi:] = base + torch.randn(n, width - xi, generator=gen).cumsum(1) * 3
    return props


@pytest.mark.parametrize("layout,width", [((0, 1, 2), 74), ((2, 4, 5), 77)])
@pytest.mark.parametrize("n,threshold,top_k", [(0, 50.0, 4), (1, 50.0, 4), (40, 50.0, 4), (200, 15.0, 3000),
                                               (70, 0.0, 10), (90, 1e4, 5)])
def test_line_nms_matches_reference_and_kernel_port(n, threshold, top_k, layout, width, gen):
    """pytorch-auto-drive's 74-value proposals and the official / CLRNet 77-value ones."""
    props = line_sets(gen, n, width, layout)
    scores = torch.rand(n, generator=gen)
    got = line_nms(props, scores, threshold, top_k, layout=layout)
    assert torch.equal(got, reference.line_nms(props, scores, threshold, top_k, layout=layout))
    keep, count, _ = line_nms_kernel_port(props, scores, threshold, top_k, layout=layout)
    assert got.tolist() == keep[:count].tolist()
    assert len(got) <= top_k


def test_line_nms_edge_values_and_bad_input(gen):
    props = line_sets(gen, 12)
    scores = torch.full((12,), 0.5)  # ties: index order
    assert torch.equal(line_nms(props, scores, 50.0, 12), reference.line_nms(props, scores, 50.0, 12))
    strided = line_sets(gen, 10, 148)[:, ::2]  # non-contiguous
    s = torch.rand(10, generator=gen)
    assert torch.equal(line_nms(strided, s, 30.0, 4), reference.line_nms(strided.contiguous(), s, 30.0, 4))
    assert line_nms(props, torch.rand(12, generator=gen), 50.0, 0).numel() == 0
    with pytest.raises(RuntimeError, match="proposals must be"):
        torch.ops.selfocus.line_nms(torch.rand(4), torch.rand(4), 1.0, 2)
    with pytest.raises(RuntimeError, match="scores must be"):
        torch.ops.selfocus.line_nms(torch.rand(4, 10), torch.rand(5), 1.0, 2)
    with pytest.raises(RuntimeError, match="threshold"):
        torch.ops.selfocus.line_nms(torch.rand(4, 10), torch.rand(4), float("nan"), 2)
    with pytest.raises(RuntimeError, match="top_k"):
        torch.ops.selfocus.line_nms(torch.rand(4, 10), torch.rand(4), 1.0, -1)
    with pytest.raises(RuntimeError, match="float32"):
        torch.ops.selfocus.line_nms(torch.rand(4, 10, dtype=torch.float64), torch.rand(4), 1.0, 2)
    with pytest.raises(RuntimeError, match="before xs_index"):
        torch.ops.selfocus.line_nms(torch.rand(4, 10), torch.rand(4), 1.0, 2, 5, 1, 2)
    with pytest.raises(RuntimeError, match="too short"):
        torch.ops.selfocus.line_nms(torch.rand(4, 6), torch.rand(4), 1.0, 2, 2, 4, 5)


@pytest.mark.parametrize("layout,width", [((0, 1, 2), 74), ((2, 4, 5), 77)])
def test_line_nms_non_finite_and_far_rows_are_no_overlap(layout, width, gen):
    """NaN or infinite starts and lengths, and starts far outside the rows (the published kernel's float-to-int
    conversion is undefined there): such a pair does not overlap, the rest as before; reference equal."""
    si, li, _ = layout
    for trial in range(20):
        props = line_sets(gen, 30, width, layout)
        props[::5, si] = float("nan")
        props[1::7, li] = float("inf")
        props[2::9, si] = -1e9 if trial % 2 else 1e9
        props[3::11, li] = -1e30
        scores = torch.rand(30, generator=gen)
        got = line_nms(props, scores, 40.0, 30, layout=layout)
        assert torch.equal(got, reference.line_nms(props, scores, 40.0, 30, layout=layout))
        assert 5 in got.tolist() or 0 in got.tolist()  # a NaN-start proposal suppresses nothing, is kept
