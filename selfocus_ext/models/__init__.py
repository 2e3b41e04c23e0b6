"""The lane model zoo: seven detectors in four families (keypoint, anchor, curve, segmentation), each in two
sizes (``-s`` Small, ``-m`` Mid: the same design on a deeper backbone), their heads and decoders."""
from functools import partial

from . import lstr, published
from .backbone import MID_DEPTHS
from .base import DEFAULT_INPUT, HeadSpec, LaneModel, probability
from .bezier import BezierLaneNet
from .condlane import CondLaneNet
from .ganet import GANet
from .laneatt import LaneATT
from .lstr import LSTR
from .registry import available, build, load, register, sizes
from .resa import RESA
from .scnn import SCNN

for _family, _cls in (("bezier", BezierLaneNet), ("ganet", GANet), ("laneatt", LaneATT), ("scnn", SCNN),
                      ("resa", RESA), ("condlane", CondLaneNet)):
    register(f"{_family}-s")(_cls)
    register(f"{_family}-m")(partial(_cls, depths=MID_DEPTHS))
for _entry in published.catalog():
    register(_entry.name)(_entry.build)
register("lstr-s")(LSTR)
register("lstr-m")(partial(LSTR, depths=lstr.MID_DEPTHS, dim=lstr.MID_DIM))

__all__ = ["BezierLaneNet", "CondLaneNet", "DEFAULT_INPUT", "GANet", "LaneATT", "LSTR", "RESA", "SCNN", "HeadSpec",
           "LaneModel", "available", "build", "load", "probability", "published", "register", "sizes"]
