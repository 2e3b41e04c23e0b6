"""python/train_zoo.py: a run stopped at a step and resumed ends with the same weights as one that never
stopped (the batches depend on seed and step only; optimiser, schedule and RNG state travel in the checkpoint)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import train_zoo  # noqa: E402
from selfocus_ext.models import registry  # noqa: E402


def test_a_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFOCUS_CACHE", str(tmp_path / "cache"))
    base = ["--model", "lstr-s", "--steps", "6", "--batch", "2", "--train-scenes", "8", "--eval-scenes", "4",
            "--ckpt-every", "2", "--minutes", "30"]

    def weights(workdir, *extra):
        monkeypatch.setattr(registry, "WEIGHTS_DIR", str(tmp_path / workdir / "weights"))
        train_zoo.main(base + ["--workdir", str(tmp_path / workdir)] + list(extra))
        return torch.load(registry.weights_path("lstr-s"), weights_only=True)["model"]

    whole = weights("whole")
    first = weights("split", "--stop-at-step", "3")
    assert any(not torch.equal(first[k], whole[k]) for k in whole)  # stopped halfway: not the end yet
    resumed = weights("split", "--resume")
    for k in whole:
        torch.testing.assert_close(resumed[k], whole[k], rtol=0, atol=0, msg=k)
