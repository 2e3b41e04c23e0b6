"""Lane data: generated road scenes, writers of the real CULane / TuSimple layouts, readers, calibration."""
from . import synth
from .datasets import (
    CULaneDataset,
    DatasetError,
    ModelInput,
    SyntheticLaneDataset,
    TuSimpleDataset,
    calibration_images,
    collate_lanes,
)
from .layouts import write_culane, write_tusimple

__all__ = [
    "CULaneDataset",
    "DatasetError",
    "ModelInput",
    "SyntheticLaneDataset",
    "TuSimpleDataset",
    "calibration_images",
    "collate_lanes",
    "synth",
    "write_culane",
    "write_tusimple",
]
