"""``python -m selfocus_ext.evaluate --model NAME ... --write-lines DIR``: one ``.lines.txt`` per test image
under DIR mirroring the image paths, in the model's implementation's own text, read back by the CULane
scorer; TuSimple predictions as JSON lines."""
import json
import os

import pytest
import torch

from oracles import randomize
from selfocus_ext import evaluate as evaluate_cli
from selfocus_ext.data.culane_files import lines_path, read_list
from selfocus_ext.data.layouts import write_culane
from selfocus_ext.models import published, registry


@pytest.fixture(scope="module")
def culane_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("culane"))
    write_culane(root, 5, seed=1, split="test")
    write_culane(root, 3, seed=2, split="train")
    return root


@pytest.mark.parametrize("name", [e.name for e in published.catalog()])
def test_a_published_model_writes_its_implementations_files(name, small, culane_root, tmp_path, capsys):
    entry = small(name)
    model = randomize(registry.build(name), seed=3, gain=0.25 if entry.family in ("lstr", "clrnet") else 0.5)
    layout = entry.layouts[0]
    ckpt = tmp_path / "ckpt.pth"
    state = layout.transform(dict(model.state_dict())) if layout.transform else model.state_dict()
    prefix = layout.strip_prefixes[0] if layout.strip_prefixes else ""
    torch.save({layout.top_keys[0]: {prefix + k: v for k, v in state.items()}}, ckpt)
    extra = []
    if "anchors" in entry.extras:  # which 1000 of the 2784 anchors the checkpoint's layers belong to
        torch.save(torch.rand(2784, generator=torch.Generator().manual_seed(1)), tmp_path / "freq.pt")
        extra = ["--anchors", str(tmp_path / "freq.pt")]
    out = tmp_path / "lines"
    code = evaluate_cli.main(["--model", name, "--checkpoint", str(ckpt), "--data", f"culane:{culane_root}",
                              "--write-lines", str(out), "--quiet"] + extra)
    printed = capsys.readouterr().out
    assert code == 0 and "wrote predictions of 5 images" in printed
    images = read_list(os.path.join(culane_root, "list", "test.txt"))
    for image in images:
        assert os.path.isfile(lines_path(str(out), image)), image
    # the files are what the model's writer makes of its decoded lanes
    loaded = registry.load(name, checkpoint=str(ckpt), anchors=extra[1] if extra else None)
    ds = __import__("selfocus_ext.data.datasets", fromlist=["x"]).CULaneDataset(culane_root, "test",
                                                                                transform=loaded.model_input)
    with torch.no_grad():
        outputs = loaded(torch.stack([ds[i]["image"] for i in range(2)]))
    lanes, _ = loaded.decode_points(outputs)
    for i in range(2):
        assert open(lines_path(str(out), images[i])).read() == loaded.lines_text(lanes[i])
    # and the CULane scorer reads them
    code = evaluate_cli.main(["culane", "--pred", str(out), "--gt", culane_root, "--quiet"])
    assert code == 0 and "total" in capsys.readouterr().out


def test_a_zoo_model_writes_lines_and_tusimple_json(culane_root, tmp_path, capsys):
    out = tmp_path / "zoo"
    code = evaluate_cli.main(["--model", "ganet-s", "--data", f"culane:{culane_root}", "--write-lines", str(out),
                              "--test", "3", "--quiet"])
    assert code == 0
    written = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
    assert len(written) == 3 and all(f.endswith(".lines.txt") for f in written)
    assert evaluate_cli.main(["culane", "--pred", str(out), "--gt", culane_root, "--quiet"]) == 0
    capsys.readouterr()

    from selfocus_ext.data.layouts import write_tusimple

    troot = str(tmp_path / "tusimple")
    write_tusimple(troot, 3, seed=4)
    code = evaluate_cli.main(["--model", "ganet-s", "--data", f"tusimple:{troot}", "--write-lines",
                              str(tmp_path / "t"), "--quiet"])
    assert code == 0
    records = [json.loads(line) for line in open(tmp_path / "t" / "predictions.json")]
    assert len(records) == 3 and {"raw_file", "lanes", "h_samples", "run_time"} <= set(records[0])


def test_write_lines_needs_a_data_set(capsys, tmp_path):
    code = evaluate_cli.main(["--model", "ganet-s", "--write-lines", str(tmp_path / "x")])
    assert code == 2 and "--write-lines" in capsys.readouterr().err
