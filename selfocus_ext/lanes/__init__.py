"""Lanes: the LaneSet format, frames, file formats and the Lane Distortion Score."""
from .distortion import distortion_score, max_weight_matching
from .formats import LaneFormatError, format_culane_lines, lanes_from_tusimple, lanes_to_tusimple, parse_culane_lines
from .frames import CULANE, FRAMES, TUSIMPLE, Frame, get_frame
from .laneset import LaneSet, resample_points

__all__ = [
    "CULANE",
    "FRAMES",
    "Frame",
    "LaneFormatError",
    "LaneSet",
    "TUSIMPLE",
    "distortion_score",
    "format_culane_lines",
    "get_frame",
    "lanes_from_tusimple",
    "lanes_to_tusimple",
    "max_weight_matching",
    "parse_culane_lines",
    "resample_points",
]
