"""The published detectors the package rebuilds: names, where each architecture and checkpoint layout comes
from, and its size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

from .checkpoint import CheckpointLayout


@dataclass(frozen=True)
class PublishedModel:
    """One published architecture at one size. ``input_size`` is (width, height) of the implementation's
    test input; ``crop_top`` the rows it cuts off the top of the original image first. ``layouts``: the checkpoint
layouts its converter reads (the implementations that publish this architecture)."""

    name: str
    family: str
    source: str
    backbone: str
    size: str
    dataset: str
    input_size: Tuple[int, int]
    crop_top: float
    layouts: Tuple[CheckpointLayout, ...]
    build: Callable[..., object]
    note: str = ""
    # files besides the checkpoint that the implementation needs to rebuild the model (LaneATT: "anchors")
    extras: Tuple[str, ...] = ()

    def build_at(self, input_size: Tuple[int, int]):
        """The architecture at another input size (width, height): the layers whose shape depends on it
        (flattened classifiers) follow, so a published checkpoint no longer fits. For tests and trials of
        speed; the published weights need the published size."""
        import dataclasses

        w, h = (int(v) for v in input_size)
        if w < 32 or h < 32 or w % 8 or h % 8:
            raise ValueError(f"input_size: expected width and height divisible by 8 and at least 32, got {input_size}")
        published_input = self.build().model_input  # the implementation's frame, crop and normalisation
        return self.build(model_input=dataclasses.replace(published_input, size=(w, h)))


_CATALOG: Dict[str, PublishedModel] = {}


def publish(entry: PublishedModel) -> PublishedModel:
    if entry.name in _CATALOG:
        raise ValueError(f"published model {entry.name!r} declared twice")
    _CATALOG[entry.name] = entry
    return entry


def published(name: str) -> PublishedModel:
    try:
        return _CATALOG[name]
    except KeyError:
        raise ValueError(f"unknown published model {name!r}; published: {sorted(_CATALOG)}") from None


def catalog() -> List[PublishedModel]:
    return [_CATALOG[k] for k in sorted(_CATALOG)]


def listing() -> str:
    """A table of the published models: name, family, size, backbone, input, parameters, source."""
    rows = [("name", "family", "size", "backbone", "data", "input (w x h, crop)", "params", "source")]
    for e in catalog():
        params = sum(p.numel() for p in e.build().parameters())
        rows.append((e.name, e.family, e.size, e.backbone, e.dataset,
                     f"{e.input_size[0]}x{e.input_size[1]}, {e.crop_top:g}", f"{params / 1e6:.2f} M", e.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
