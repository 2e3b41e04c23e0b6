"""Training the published detectors on generated scenes: targets that the implementation's own decoding turns
back into the labelled lanes, the losses against hand-computed values, the shared training loop's log and
errors, and a whole (tiny) run whose checkpoint loads through the normal --checkpoint path."""
import json
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

from selfocus_ext.data import synth  # noqa: E402
from selfocus_ext.models import registry  # noqa: E402
from selfocus_ext.models.published import published  # noqa: E402
from selfocus_ext.models.published.training import (BezierTraining, RowAnchorTraining,  # noqa: E402
                                                      SegmentationTraining, training_for)
from selfocus_ext.workflow.training import TrainOptions, train  # noqa: E402


@pytest.fixture(scope="module")
def ufld():
    torch.manual_seed(0)
    return published("ufld-r18").build().eval()


def scenes(n, seed=3):
    return np.stack([synth.ground_truth_slots(synth.sample_scene(s, "culane")) for s in synth.scene_seeds(seed, n)])


def test_row_anchor_targets_decode_back_to_the_labelled_lanes(ufld):
    slots = scenes(12)
    obj = RowAnchorTraining(ufld)
    t = obj.targets(slots)
    assert t.shape == (12, 18, 4) and t.dtype == torch.int64
    assert (t < 200).any() and (t == 200).any()
    # logits that put everything on the target class: the implementation's decoder must return the lanes
    logits = torch.full((12, 201, 18, 4), -20.0)
    logits.scatter_(1, t.unsqueeze(1), 20.0)
    loc = logits[:, :200]
    outputs = {"loc": loc, "exist": torch.logsumexp(loc, 1) - logits[:, 200]}
    images, _ = ufld.decode_points(outputs)
    ys = np.array([589 - 20 * j for j in range(18)], np.float64)
    frame = ufld.model_input.frame
    checked = 0
    for b in range(12):
        assert len(images[b]) == int(((t[b] < 200).sum(0) > 2).sum())
        for lane in images[b]:
            # each decoded point lies on some labelled lane within half a grid cell (4.1 frame pixels) + 1
            for x, y in lane:
                row = int(np.argmin(np.abs(ys - y)))
                truth = []
                for s in range(4):
                    xs = slots[b, s]
                    keep = np.isfinite(xs)
                    if keep.sum() >= 2:
                        order = np.argsort(frame.ys[keep])
                        truth.append(np.interp(ys[row], frame.ys[keep][order], xs[keep][order]))
                assert min(abs(x - v) for v in truth) <= 799 / 199 * 1640 / 800 / 2 + 1.5
                checked += 1
    assert checked > 100


def test_row_anchor_focal_loss_matches_a_hand_computed_case(ufld):
    obj = RowAnchorTraining(ufld)
    torch.manual_seed(1)
    loc = torch.randn(2, 200, 18, 4)
    absent = torch.randn(2, 18, 4)
    exist = torch.logsumexp(loc, 1) - absent
    t = torch.randint(0, 201, (2, 18, 4))
    got = obj.loss({"loc": loc, "exist": exist}, t)
    total = 0.0
    for b in range(2):
        for r in range(18):
            for i in range(4):
                z = torch.cat([loc[b, :, r, i], absent[b, r, i].view(1)]).double()
                p = torch.softmax(z, 0)[t[b, r, i]].item()
                total += -((1 - p) ** 2) * math.log(p)
    assert got.item() == pytest.approx(total / (2 * 18 * 4), rel=1e-4)


def test_segmentation_targets_and_loss():
    torch.manual_seed(0)
    model = published("scnn-r18").build().eval()
    obj = SegmentationTraining(model)
    slots = scenes(3)
    t = obj.targets(slots)
    w, h = model.model_input.size
    assert t["seg"].shape == (3, h, w) and t["exist"].shape == (3, 4)
    for b in range(3):
        present = [s for s in range(4) if np.isfinite(slots[b, s]).sum() >= 2]
        assert t["exist"][b].nonzero().flatten().tolist() == present
        assert sorted(set(t["seg"][b].unique().tolist()) - {0}) == [s + 1 for s in present]
    assert obj.width == 8  # CULane's 16-pixel labels at 800 of 1640 pixels
    out = torch.randn(3, 5, h // 8, w // 8)
    lane = torch.randn(3, 4)
    got = obj.loss({"out": out, "lane": lane}, t)
    up = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    logp = F.log_softmax(up, 1).gather(1, t["seg"].unsqueeze(1)).squeeze(1)
    wts = torch.tensor([0.4, 1, 1, 1, 1])[t["seg"]]
    ce = -(wts * logp).sum() / wts.sum()
    bce = -(t["exist"] * F.logsigmoid(lane) + (1 - t["exist"]) * F.logsigmoid(-lane)).mean()
    assert got.item() == pytest.approx((ce + 0.1 * bce).item(), rel=1e-5)


def bezier_outputs_at_the_targets(curves):
    """Outputs whose query nearest each lane's mean column holds that lane's curve, confidently."""
    logits = torch.full((len(curves), 50), -4.0)
    out = torch.zeros(len(curves), 50, 4, 2)
    for b, gt in enumerate(curves):
        for g in range(len(gt)):
            mean_x = float((torch.from_numpy(gt[g]) * torch.tensor([1 / 8, 3 / 8, 3 / 8, 1 / 8])[:, None]).sum(0)[0])
            q = int(np.clip(np.floor(mean_x * 50), 0, 49))
            assert logits[b, q] < 0, "two lanes on one query: pick other scenes"
            logits[b, q], out[b, q] = 4.0, torch.from_numpy(gt[g])
    return {"logits": logits, "curves": out}


def test_bezier_targets_decode_back_to_the_labelled_lanes_and_cost_only_the_existence_term():
    model = published("bezier-r18").build().eval()
    obj = BezierTraining(model)
    slots = scenes(8, seed=5)
    t = obj.targets(slots)
    assert [len(c) for c in t["curves"]] == [int((np.isfinite(s).sum(1) >= 2).sum()) for s in slots]
    outputs = bezier_outputs_at_the_targets(t["curves"])
    images, _ = model.decode_points(outputs)
    frame = model.model_input.frame
    checked = 0
    for b in range(8):
        assert len(images[b]) == len(t["curves"][b])
        truth = [s for s in slots[b] if np.isfinite(s).sum() >= 2]
        for lane in images[b]:
            # each decoded point lies near a labelled lane (a cubic's fit to a generated lane: a few pixels)
            errs = []
            for xs in truth:
                keep = np.isfinite(xs)
                order = np.argsort(frame.ys[keep])
                inside = (lane[:, 1] >= frame.ys[keep].min()) & (lane[:, 1] <= frame.ys[keep].max())
                x = np.interp(lane[inside, 1], frame.ys[keep][order], xs[keep][order])
                errs.append(np.abs(x - lane[inside, 0]).max() if inside.any() else np.inf)
            assert min(errs) <= 12.0
            checked += 1
    assert checked >= 12
    # at the targets the curve terms vanish: the loss is the existence BCE (positives weighted 4) alone
    got = obj.loss(outputs, t)
    target = (outputs["logits"] > 0).float()
    bce = -(4 * target * F.logsigmoid(outputs["logits"]) + (1 - target) * F.logsigmoid(-outputs["logits"])).mean()
    assert got.item() == pytest.approx(bce.item(), rel=1e-4)
    moved = {k: v.clone() for k, v in outputs.items()}
    moved["curves"] = moved["curves"] + 0.01
    assert obj.loss(moved, t).item() > got.item() + 0.05


def test_families_without_an_objective_and_bad_labels_are_refused(ufld):
    with pytest.raises(ValueError, match="training is implemented for the published families"):
        training_for(published("condlane-r18").build())
    with pytest.raises(ValueError, match=r"slots: expected \[B, lanes, 59\]"):
        RowAnchorTraining(ufld).targets(np.zeros((2, 4, 10), np.float32))
    with pytest.raises(ValueError, match="batch: expected a positive integer"):
        TrainOptions(steps=3, batch=0)


def test_the_step_log_keeps_one_line_per_step_across_a_resume_and_a_nan_loss_stops(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(8, 3)
    batch = lambda idx: (x[idx], None)  # noqa: E731
    loss = lambda out, _: out.square().mean()  # noqa: E731
    ckpt, log = str(tmp_path / "last.pt"), str(tmp_path / "steps.jsonl")
    train(model, 8, batch, loss, ckpt, TrainOptions(steps=6, batch=2, ckpt_every=2, stop_at_step=5), "t", log)
    with open(log, "a") as fh:  # lines past the checkpoint (a crash after step 5's line was written)
        fh.write(json.dumps({"step": 6, "loss": 0.0, "lr": 0.0, "seconds": 0.0}) + "\n")
    train(model, 8, batch, loss, ckpt, TrainOptions(steps=6, batch=2, ckpt_every=2, resume=True), "t", log)
    with open(log) as fh:
        steps = [json.loads(line)["step"] for line in fh]
    assert steps == [1, 2, 3, 4, 5, 6]
    bad = lambda out, _: out.sum() * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match="the loss is nan at step 0"):
        train(torch.nn.Linear(3, 1), 8, batch, bad, str(tmp_path / "b.pt"), TrainOptions(steps=2, batch=2), "t")


def test_a_tiny_run_writes_a_checkpoint_that_the_checkpoint_path_loads(tmp_path, monkeypatch):
    import train_published

    monkeypatch.setenv("SELFOCUS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(train_published, "floor", lambda name: 90.0)
    out = tmp_path / "ckpt"
    assert train_published.main(["--model", "ufld-r18", "--steps", "2", "--batch", "1", "--train-scenes", "2",
                                 "--eval-scenes", "2", "--workdir", str(tmp_path / "work"),
                                 "--out-dir", str(out), "--channels-last"]) == 0
    card = json.loads((out / "ufld-r18-synth.json").read_text())
    assert card["steps"] == 2 and card["storage"] == "float16" and not card["at_floor"] and card["channels_last"]
    assert (out / "ufld-r18-synth.md").read_text().startswith("# ufld-r18 trained on generated scenes")
    loaded = registry.load("ufld-r18", checkpoint=str(out / "ufld-r18-synth.pth"))
    last = torch.load(tmp_path / "work" / "ufld-r18" / "last.pt", weights_only=True)["model"]
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, last[k].half().to(v.dtype), rtol=0, atol=0, msg=k)
    with pytest.raises(SystemExit):
        train_published.main(["--model", "condlane-r18"])


def test_every_trainable_catalog_family_builds_its_objective():
    import train_published

    names = train_published.trainable()
    assert {"ufld-r18", "scnn-r18", "resa-r18", "bezier-r18"} <= set(names)
    assert "lstr-r18s" not in names  # a curve family of its own, without an objective here
    for name in ("ufld-r34", "resa-r50-official", "bezier-r34"):
        assert name in names
        training_for(published(name).build())


def test_a_resume_with_other_settings_is_refused_by_name(tmp_path):
    import argparse

    import train_published

    path = str(tmp_path / "run" / "settings.json")
    base = dict(steps=3000, batch=4, lr=1e-3, train_scenes=4000, seed=0, channels_last=False, input_size=None,
                init=None, init_sha256=None, resume=False)
    train_published.check_settings(path, argparse.Namespace(**base))
    train_published.check_settings(path, argparse.Namespace(**{**base, "resume": True}))  # the same: fine
    with pytest.raises(SystemExit, match=r"--batch 4 \(now 8\), --channels-last False \(now True\)"):
        train_published.check_settings(path, argparse.Namespace(**{**base, "resume": True, "batch": 8,
                                                                   "channels_last": True}))


def test_a_run_at_another_input_size_records_it_and_loads_at_it(tmp_path, monkeypatch):
    import train_published
    from selfocus_ext.models.published.checkpoint import CheckpointError, checkpoint_input_size

    monkeypatch.setenv("SELFOCUS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(train_published, "floor", lambda name: 98.0)
    out = tmp_path / "ckpt"
    assert train_published.main(["--model", "scnn-r18", "--steps", "1", "--batch", "1", "--train-scenes", "2",
                                 "--eval-scenes", "2", "--workdir", str(tmp_path / "work"), "--out-dir", str(out),
                                 "--input-size", "256x96"]) == 0
    path = str(out / "scnn-r18-synth.pth")
    assert checkpoint_input_size(path) == (256, 96)
    card = json.loads((out / "scnn-r18-synth.json").read_text())
    assert card["input"] == [256, 96] and card["implementation_input"] == [800, 288]
    assert "not the implementation's 800x288" in (out / "scnn-r18-synth.md").read_text()
    model = registry.load("scnn-r18", checkpoint=path)
    assert tuple(model.model_input.size) == (256, 96)
    out_heads = model(torch.zeros(1, 3, 96, 256))
    assert out_heads["lane"].shape == (1, 4)
    with pytest.raises(CheckpointError, match="does not fit scnn-r18"):
        registry.load("scnn-r18", checkpoint=path, input_size=(800, 288))
    with pytest.raises(ValueError, match="input_size: lstr-s is a zoo model"):
        registry.load("lstr-s", input_size=(400, 160))
    with pytest.raises(SystemExit):
        train_published.main(["--model", "scnn-r18", "--input-size", "250x96"])


def test_the_rebuild_command_does_not_depend_on_the_clock():
    import train_published

    args = ["--model", "ufld-r18", "--steps", "3000", "--minutes", "72", "--resume", "--stop-at-step", "9",
            "--workdir", "/tmp/w"]
    assert (train_published.rebuild_command(args, 2740, 3000) ==
            "python python/train_published.py --model ufld-r18 --steps 3000 --stop-at-step 2740")
    assert train_published.rebuild_command(["--model", "ufld-r18", "--minutes=5"], 3000, 3000) == \
        "python python/train_published.py --model ufld-r18"


def test_a_further_stage_starts_from_the_stored_weights_and_its_card_chains_the_stages(tmp_path, monkeypatch, capsys):
    import shutil

    import train_published

    monkeypatch.setenv("SELFOCUS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(train_published, "floor", lambda name: 90.0)
    common = ["--model", "bezier-r18", "--batch", "1", "--train-scenes", "2", "--eval-scenes", "2",
              "--input-size", "128x64"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert train_published.main(common + ["--steps", "2", "--workdir", str(tmp_path / "w1"), "--out-dir", str(one)]) == 0
    stored = registry.load("bezier-r18", checkpoint=str(one / "bezier-r18-synth.pth")).state_dict()
    seen = {}
    real_train = train_published.train

    def spy(model, *args, **kw):
        seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real_train(model, *args, **kw)

    monkeypatch.setattr(train_published, "train", spy)
    init = str(one / "bezier-r18-synth.pth")
    assert train_published.main(common + ["--steps", "3", "--lr", "5e-4", "--init", init,
                                          "--workdir", str(tmp_path / "w2"), "--out-dir", str(two)]) == 0
    for k, v in stored.items():
        torch.testing.assert_close(seen[k], v, rtol=0, atol=0, msg=k)
    card = json.loads((two / "bezier-r18-synth.json").read_text())
    assert card["steps"] == 5 and [st["steps"] for st in card["stages"]] == [2, 3]
    first, second = card["command"].split(" && ")
    assert "--init" not in first and f"--init {init}" in second and "--lr 5e-4" in second
    assert "in 2 stages" in (two / "bezier-r18-synth.md").read_text()
    # an init file that is not the one its card describes, or another model's, is refused
    shutil.copy(one / "bezier-r18-synth.json", tmp_path / "bezier-r18-synth.json")
    shutil.copy(two / "bezier-r18-synth.pth", tmp_path / "bezier-r18-synth.pth")
    with pytest.raises(SystemExit):
        train_published.main(common + ["--init", str(tmp_path / "bezier-r18-synth.pth"), "--workdir", str(tmp_path / "w3")])
    assert "does not match its card's SHA-256" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_published.main(["--model", "bezier-r34", "--init", init, "--workdir", str(tmp_path / "w4")])
    assert "holds 'bezier-r18', not --model 'bezier-r34'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where torch has no CUDA")
def test_a_cuda_run_without_cuda_is_refused_by_name(capsys):
    import train_published

    with pytest.raises(SystemExit):
        train_published.main(["--model", "scnn-r18", "--device", "cuda"])
    assert "--device cuda: this torch has no CUDA device" in capsys.readouterr().err

