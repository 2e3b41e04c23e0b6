"""The lane model zoo: four families (keypoint, anchor, curve, segmentation), their heads and decoders."""
from .base import DEFAULT_INPUT, HeadSpec, LaneModel, probability
from .ganet import GANetS
from .registry import available, build, load, register

register("ganet-s")(GANetS)

__all__ = ["DEFAULT_INPUT", "GANetS", "HeadSpec", "LaneModel", "available", "build", "load", "probability", "register"]
