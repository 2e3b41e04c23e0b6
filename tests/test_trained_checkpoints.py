"""The trained real-size checkpoints kept in checkpoints/: each file is the one its card describes (SHA-256),
loads through the normal --checkpoint path at the size it records, and runs. Their F1 against the floor over
the whole 2000-scene test set is `python python/real_size.py --check` (minutes per model, not a unit test)."""
import glob
import hashlib
import json
import os

import pytest
import torch

from selfocus_ext.models import registry

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints")
CARDS = sorted(glob.glob(os.path.join(ROOT, "*-synth.json")))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.mark.skipif(not CARDS, reason="no trained checkpoint in checkpoints/")
@pytest.mark.parametrize("card_path", CARDS, ids=[os.path.basename(c)[:-len("-synth.json")] for c in CARDS])
def test_a_kept_checkpoint_is_its_cards_file_and_loads(card_path):
    with open(card_path) as fh:
        card = json.load(fh)
    path = card_path[:-len(".json")] + ".pth"
    assert os.path.isfile(path), f"{path}: the card's checkpoint is not in the repository"
    assert os.path.getsize(path) <= 30 * 2**20
    assert sha256(path) == card["sha256"]
    assert card["at_floor"] == (card["f1"]["total"] >= card["floor"])
    model = registry.load(card["model"], checkpoint=path)
    w, h = card["input"]
    assert tuple(model.model_input.size) == (w, h)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, h, w))
    assert all(torch.isfinite(v).all() for v in out.values())
    assert os.path.isfile(card_path[:-len(".json")] + ".md")
