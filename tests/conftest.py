import os

import pytest
import torch

from selfocus_ext.ops import cuda_compiled


def cuda_usable() -> bool:
    return cuda_compiled() and torch.cuda.is_available()


@pytest.fixture
def gen():
    """A seeded generator so every test draws fresh but reproducible random inputs."""
    return torch.Generator().manual_seed(20261126)


# Published architectures built at this input in the tests that run the commands on them (the real sizes are
# too slow for CI; the equivalence tests run at the real size).
SMALL = (224, 72)


@pytest.fixture
def small(monkeypatch):
    """``small(name)``: the published model ``name`` built at ``SMALL`` for the test's duration; its entry."""
    from selfocus_ext.models import published, registry

    def use(name):
        entry = published.published(name)
        monkeypatch.setitem(registry._BUILDERS, name, lambda: entry.build_at(SMALL))
        return entry
    return use


requires_cuda = pytest.mark.skipif(not cuda_usable(), reason="needs a CUDA build of selfocus_ext and a GPU")


def shipped_models(names):
    """The names among ``names`` whose trained weights ship in the package (a Mid model counts once trained)."""
    from selfocus_ext.models import registry

    return [n for n in names if os.path.isfile(registry.weights_path(n))]


FAMILIES = ["ganet", "laneatt", "bezier", "scnn", "resa", "lstr", "condlane"]
MID_MODELS = [f"{f}-m" for f in FAMILIES]

# SELFOCUS_TEST_EVERY_SIZE=1 runs the slow end-to-end tests on every size of a family; by default they run on
# one size per family (and checkpoint layout), since the sizes of a family share their code path and only
# the widths or the trunk's depth differ. The equivalence tests against the implementations run every size.
EVERY_SIZE = os.environ.get("SELFOCUS_TEST_EVERY_SIZE", "") == "1"


def one_per_family(entries):
    """The names of ``entries`` (published catalog entries) to run an end-to-end test on: every one under
    EVERY_SIZE, else the first of each (family, checkpoint layouts)."""
    if EVERY_SIZE:
        return [e.name for e in entries]
    seen, names = set(), []
    for e in entries:
        key = (e.family, tuple(layout.source for layout in e.layouts))
        if key not in seen:
            seen.add(key)
            names.append(e.name)
    return names


class TwoLayers(torch.nn.Module):
    """A convolution, ReLU and a 1x1 head returning ``{"y": ...}``: the smallest network the quantizer converts."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return {"y": self.head(torch.relu(self.conv(x)))}
