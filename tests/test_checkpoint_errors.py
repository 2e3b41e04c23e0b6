"""A damaged or foreign checkpoint or anchors file: one line naming the file and what is wrong, exit 2,
nothing run from the file, nothing written."""
import pytest
import torch

from conftest import SMALL
from selfocus_ext import tune
from selfocus_ext.models import published, registry
from selfocus_ext.models.published.laneatt import attach_anchors





def save(path, state, top="net", prefix="module."):
    torch.save({top: {prefix + k: v for k, v in state.items()}}, path)
    return str(path)


def one_line_exit_2(args, capsys, tmp_path):
    code = tune.main(args + ["--data", "synth", "--budget", "ci", "--calib", "2", "--test", "2", "--quiet",
                             "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
    return err


def test_a_layout_transform_that_cannot_apply_is_one_line(small, capsys, tmp_path):
    """CLRNet's layout flips the first convolution's channels (BGR): a 1-D tensor there is not its layout."""
    small("clrnet-r18")
    state = registry.build("clrnet-r18").state_dict()
    state["backbone.model.conv1.weight"] = torch.zeros(7)
    path = save(tmp_path / "bad.pth", state)
    with pytest.raises(published.CheckpointError, match="bad.pth: not a CLRNet checkpoint of clrnet-r18"):
        registry.load("clrnet-r18", checkpoint=path)
    err = one_line_exit_2(["--model", "clrnet-r18", "--checkpoint", path], capsys, tmp_path)
    assert "bad.pth" in err and "CLRNet" in err


def test_non_finite_weights_are_refused(small, capsys, tmp_path):
    small("ufld-r18")
    state = registry.build("ufld-r18").state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key] = state[key].clone()
    state[key].view(-1)[1] = float("nan")
    path = save(tmp_path / "nan.pth", state, top="model", prefix="")
    with pytest.raises(published.CheckpointError, match=f"nan.pth: {key} holds non-finite values"):
        registry.load("ufld-r18", checkpoint=path)
    err = one_line_exit_2(["--model", "ufld-r18", "--checkpoint", path], capsys, tmp_path)
    assert "non-finite" in err


@pytest.mark.parametrize("content", ["text", "dict", "shape"])
def test_a_bad_anchors_file_is_one_line(content, tmp_path):
    model = published.published("laneatt-r18").build_at(SMALL)
    path = tmp_path / "freq.pt"
    if content == "text":
        path.write_text("these are not anchor frequencies\n")
    elif content == "dict":
        torch.save({"freq": torch.rand(2784)}, path)
    else:
        torch.save(torch.rand(5, 3), path)
    with pytest.raises(published.CheckpointError, match=r"anchors: .*freq.pt") as info:
        attach_anchors(model, str(path))
    assert "\n" not in str(info.value)


def test_a_bad_anchors_file_stops_the_command_in_one_line(small, capsys, tmp_path):
    small("laneatt-r18")
    ckpt = save(tmp_path / "m.pth", registry.build("laneatt-r18").state_dict(), top="model", prefix="")
    freq = tmp_path / "freq.pt"
    freq.write_text("not a tensor file")
    err = one_line_exit_2(["--model", "laneatt-r18", "--checkpoint", ckpt, "--anchors", str(freq)], capsys, tmp_path)
    assert "anchors" in err and "freq.pt" in err
