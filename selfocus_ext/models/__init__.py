"""The lane model zoo: seven detectors in four families (keypoint, anchor, curve, segmentation), their heads and
decoders."""
from .base import DEFAULT_INPUT, HeadSpec, LaneModel, probability
from .bezier import BezierS
from .condlane import CondLaneS
from .ganet import GANetS
from .registry import available, build, load, register
from .laneatt import LaneATTS
from .lstr import LSTRS
from .resa import RESAS
from .scnn import SCNNS

register("bezier-s")(BezierS)
register("ganet-s")(GANetS)
register("laneatt-s")(LaneATTS)
register("scnn-s")(SCNNS)
register("resa-s")(RESAS)
register("lstr-s")(LSTRS)
register("condlane-s")(CondLaneS)

__all__ = ["BezierS", "CondLaneS", "DEFAULT_INPUT", "GANetS", "LaneATTS", "LSTRS", "RESAS", "SCNNS", "HeadSpec", "LaneModel", "available", "build", "load", "probability", "register"]
