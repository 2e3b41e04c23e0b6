"""The decoders layer: a registry keyed by family, decoders usable without their model, keyword arguments
with named defaults, and models that only name their decoder."""
import inspect

import numpy as np
import pytest
import torch

from selfocus_ext import decoders, models
from selfocus_ext.decoders import Decoder, build_decoder, decoder_names, register_decoder
from selfocus_ext.models.targets import build_trainset
from selfocus_ext.testing.head_oracle import outputs_from_targets

ZOO = ["ganet-s", "laneatt-s", "bezier-s", "scnn-s", "resa-s", "lstr-s", "condlane-s"]


@pytest.fixture(scope="module")
def slots():
    return build_trainset(4, 3, models.DEFAULT_INPUT, cache=False)["slots"]


def same(a, b) -> bool:
    return torch.equal(a.xs.nan_to_num(-1), b.xs.nan_to_num(-1)) and torch.equal(a.scores.nan_to_num(-1),
                                                                                b.scores.nan_to_num(-1))


def test_every_zoo_family_names_a_registered_decoder():
    assert set(decoder_names()) >= {"bezier", "condlane", "ganet", "laneatt", "lstr", "segmentation"}
    for name in ZOO:
        m = models.build(name)
        assert m.decoder_name in decoder_names(), name
        assert isinstance(m.lane_decoder(), Decoder)


@pytest.mark.parametrize("name", ZOO)
def test_the_model_decodes_through_its_registered_decoder(name, slots):
    m = models.build(name)
    out = outputs_from_targets(name, m, m.targets(slots))
    dec = build_decoder(m.decoder_name, m.model_input, **m.decoder_inputs())
    for backend in ("cpp", "python"):
        a, b = m.decode(out, backend=backend), dec(out, backend=backend)
        assert int(a.present().sum()) > 0, f"{name}/{backend}: the oracle heads decode to no lane"
        assert same(a, b), f"{name}/{backend}"
    assert same(m.decode_reference(out), dec.reference(out))


@pytest.mark.parametrize("name", ZOO)
def test_native_and_reference_take_the_same_keywords_and_defaults(name):
    dec = models.build(name).lane_decoder()
    native = inspect.signature(dec.native).parameters
    reference = inspect.signature(dec.reference).parameters
    assert list(native) == list(reference)
    assert [p.default for p in native.values()] == [p.default for p in reference.values()]
    assert all(p.default is not inspect.Parameter.empty for k, p in native.items() if k != "outputs")


def test_a_changed_keyword_reaches_both_backends(slots):
    m = models.build("ganet-s")
    out = outputs_from_targets("ganet-s", m, m.targets(slots))
    for backend in ("cpp", "python"):
        assert int(m.decode(out, backend=backend).present().sum()) > 0
        assert int(m.decode(out, backend=backend, threshold=0.9999).present().sum()) == 0, backend


def test_a_decoder_serves_a_network_outside_the_zoo(slots):
    """A user's heatmap network reuses the zoo's GANet decoder with no zoo model built."""
    zoo = models.build("ganet-s")
    out = outputs_from_targets("ganet-s", zoo, zoo.targets(slots))
    dec = build_decoder("ganet", models.DEFAULT_INPUT)
    lanes = dec(out)
    assert lanes.xs.shape[0] == len(slots) and int(lanes.present().sum()) > 0


def test_bad_requests_are_named():
    with pytest.raises(KeyError, match="no decoder named 'no-such-family'; registered: "):
        build_decoder("no-such-family", models.DEFAULT_INPUT)
    with pytest.raises(TypeError, match="model_input must be a ModelInput, got tuple"):
        build_decoder("ganet", (400, 160))
    with pytest.raises(ValueError, match="backend must be 'cpp' or 'python', got 'cuda'"):
        build_decoder("bezier", models.DEFAULT_INPUT)({}, backend="cuda")
    with pytest.raises(ValueError, match=r"anchor_xs must be \[anchors, 3\]"):
        build_decoder("laneatt", models.DEFAULT_INPUT, anchor_xs=torch.zeros(5, 4), row_ys=np.zeros(3))
    with pytest.raises(TypeError, match="expected a Decoder subclass with a name"):
        register_decoder(object)

    class Other(decoders.GANetDecoder):
        pass

    with pytest.raises(ValueError, match="a different decoder is already registered as 'ganet'"):
        register_decoder(Other)


def test_a_model_without_a_decoder_says_so():
    class Bare(models.LaneModel):
        pass

    with pytest.raises(NotImplementedError, match="Bare names no decoder"):
        Bare().decode({})


PUBLISHED = ["ufld-r18", "lstr-r18s", "bezier-r18", "scnn-r18", "resa-r50-official", "clrnet-r18", "laneatt-r18",
             "condlane-r18", "ganet-r18"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_native_and_reference_take_the_same_keywords_and_defaults(name):
    from selfocus_ext.models import registry

    model = registry.build(name)
    assert model.supports_monte_carlo
    dec = model.lane_decoder()
    native = inspect.signature(dec.native).parameters
    reference = inspect.signature(dec.reference).parameters
    assert list(native) == list(reference)
    assert [p.default for p in native.values()] == [p.default for p in reference.values()]
    assert all(p.default is not inspect.Parameter.empty for k, p in native.items() if k != "outputs")


def test_every_catalog_entry_decodes_monte_carlo_copies_natively():
    from selfocus_ext.models import published

    entries = published.catalog()
    assert len(entries) >= 19
    for entry in entries:
        model = entry.build_at((160, 64))  # (the size does not matter here; small builds fast)
        assert model.supports_monte_carlo, entry.name
        assert model.lane_decoder().supports_monte_carlo, entry.name
