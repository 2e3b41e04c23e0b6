"""Published lane detectors at their real size: the architectures of the public implementations, rebuilt
with the project's modules and names, with converters for those implementations' checkpoints.

``catalog()`` lists them; ``selfocus_ext.models.load(NAME, checkpoint=FILE)`` builds one and loads a user's
checkpoint (no weights ship: they are the user's).
"""
from . import bezier, clrnet, condlane, ganet, laneatt, lstr, segmentation, ufld  # noqa: F401  (declare their models)
from .catalog import PublishedModel, catalog, listing, published
from .checkpoint import CheckpointError, CheckpointLayout, load_checkpoint

__all__ = ["CheckpointError", "CheckpointLayout", "PublishedModel", "catalog", "listing", "load_checkpoint",
           "published"]
