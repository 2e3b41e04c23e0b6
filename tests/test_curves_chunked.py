"""Noise-score curves in bounded memory: the noisy copies of a head drawn and decoded in chunks give the
curve of one whole draw (the same noise values; the mean up to the order of its sum)."""
import pytest
import torch

from selfocus_ext import models, tune
from selfocus_ext.cli.tune_args import parse_memory
from selfocus_ext.data import calibration_images
from selfocus_ext.recon.curves import build_curves, chunk_sizes, copies_per_chunk


@pytest.mark.parametrize("per_copy,copies,memory", [(67000, 20, 67000 * 4 * 2 * 3), (12345, 7, 1), (4096, 20, 10**9),
                                                    (3, 50, 40), (1, 5, 8)])
def test_chunks_hold_whole_blocks_of_sixteen_values(per_copy, copies, memory):
    per_chunk = copies_per_chunk(per_copy, 4, copies, memory)
    sizes = chunk_sizes(copies, per_chunk, per_copy)
    assert sum(sizes) == copies and all(s > 0 for s in sizes)
    assert all(s * per_copy % 16 == 0 for s in sizes[:-1])
    assert len(sizes) == 1 or sizes[-1] * per_copy >= 16


def test_chunked_draws_are_the_whole_draw():
    shape = (2, 134, 10, 25)
    for memory in (1, 134 * 2 * 250 * 4 * 2 * 3):
        sizes = chunk_sizes(9, copies_per_chunk(67000, 4, 9, memory), 67000)
        g = torch.Generator().manual_seed(1)
        whole = torch.randn((9,) + shape, generator=g)
        g = torch.Generator().manual_seed(1)
        parts = torch.cat([torch.randn((n,) + shape, generator=g) for n in sizes])
        assert len(sizes) > 1 and torch.equal(whole, parts)


@pytest.mark.parametrize("name", ["ganet-s", "condlane-s"])
def test_chunked_curves_equal_the_unchunked(name):
    m = models.load(name)
    images = calibration_images(6, seed=2)
    whole = build_curves(m, images, levels=3, reruns=5, seed=3, progress=False)
    small = build_curves(m, images, levels=3, reruns=5, seed=3, progress=False, memory=1)
    for head in whole:
        assert whole[head].levels == small[head].levels
        torch.testing.assert_close(torch.tensor(small[head].scores, dtype=torch.float64),
                                   torch.tensor(whole[head].scores, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_memory_argument():
    assert parse_memory("512M") == 512 << 20 and parse_memory("2G") == 2 << 30 and parse_memory("1.5g") == 3 << 29
    for bad in ("lots", "0", "-1G", "10K", "nanG"):
        with pytest.raises(Exception, match="--curves-memory"):
            parse_memory(bad)


def test_the_tune_command_refuses_a_bad_memory_size(capsys, tmp_path):
    assert tune.main(["--curves-memory", "lots", "--out", str(tmp_path / "r")]) == 2
    assert "--curves-memory" in capsys.readouterr().err


def test_curve_cache_keeps_the_build_seconds(tmp_path):
    """A cached curve file gives back the seconds its build took (a method's cost counts them whenever the
    curves are reused); a file of the older layout (heads only) still loads, with the seconds unknown."""
    import os

    from selfocus_ext.files import atomic_write_json, read_json
    from selfocus_ext.recon.curves import load_or_build_curves

    m = models.load("ganet-s")
    images = calibration_images(3, seed=2)
    built, secs, cached = load_or_build_curves(m, images, str(tmp_path), 2, 2, 0, False, "ganet-s")
    assert not cached and secs > 0
    again, secs2, cached2 = load_or_build_curves(m, images, str(tmp_path), 2, 2, 0, False, "ganet-s")
    assert cached2 and secs2 == pytest.approx(secs) and again.keys() == built.keys()
    (path,) = [os.path.join(tmp_path, f) for f in os.listdir(tmp_path)]
    atomic_write_json(read_json(path, "")["curves"], path)
    old, secs3, cached3 = load_or_build_curves(m, images, str(tmp_path), 2, 2, 0, False, "ganet-s")
    assert cached3 and secs3 is None and all(old[h].levels == built[h].levels for h in built)
