"""The lane model zoo: four families (keypoint, anchor, curve, segmentation), their heads and decoders."""
from .base import DEFAULT_INPUT, HeadSpec, LaneModel, probability
from .bezier import BezierS
from .ganet import GANetS
from .registry import available, build, load, register
from .laneatt import LaneATTS
from .scnn import SCNNS

register("bezier-s")(BezierS)
register("ganet-s")(GANetS)
register("laneatt-s")(LaneATTS)
register("scnn-s")(SCNNS)

__all__ = ["BezierS", "DEFAULT_INPUT", "GANetS", "LaneATTS", "SCNNS", "HeadSpec", "LaneModel", "available", "build", "load", "probability", "register"]
