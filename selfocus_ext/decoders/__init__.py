"""Decoders: a model's raw head tensors -> a LaneSet on the frame's rows, one decoder per family behind a
registry. Each runs the batched native op (``backend="cpp"``) or its plain-Python reference
(``backend="python"``); models return head tensors and name their decoder (``LaneModel.decoder_name``).

    dec = build_decoder("ganet", model_input)
    lanes = dec(outputs)                      # native, LaneSet (or (xs, scores) with a Monte-Carlo dim)
    lanes = dec(outputs, backend="python", threshold=0.5)
"""
from .activations import softmax_foreground
from .base import MAX_LANES, Decoder, points_to_laneset
from .bezier import BezierDecoder
from .condlane import CondLaneDecoder
from .ganet import GANetDecoder
from .laneatt import LaneATTDecoder
from .lstr import LSTRDecoder
from .registry import build_decoder, decoder_names, register_decoder
from .segmentation import SegmentationDecoder
from .ufld import UFLDDecoder
from .pad_curves import PadBezierDecoder, PadLSTRDecoder
from .published_segmentation import OfficialRESADecoder, PadSegmentationDecoder
from .published_anchor import CLRNetDecoder, PublishedLaneATTDecoder
from .published_keypoint import CondLanePublishedDecoder, GANetPublishedDecoder

for _cls in (BezierDecoder, CondLaneDecoder, GANetDecoder, LaneATTDecoder, LSTRDecoder, SegmentationDecoder, UFLDDecoder,
             PadBezierDecoder, PadLSTRDecoder, PadSegmentationDecoder, OfficialRESADecoder,
             CLRNetDecoder, PublishedLaneATTDecoder, CondLanePublishedDecoder, GANetPublishedDecoder):
    register_decoder(_cls)

__all__ = ["MAX_LANES", "BezierDecoder", "CLRNetDecoder", "CondLanePublishedDecoder", "GANetPublishedDecoder", "PublishedLaneATTDecoder", "CondLaneDecoder", "Decoder", "GANetDecoder", "LaneATTDecoder",
           "LSTRDecoder", "OfficialRESADecoder", "PadBezierDecoder", "PadLSTRDecoder", "PadSegmentationDecoder", "SegmentationDecoder", "UFLDDecoder", "build_decoder", "decoder_names", "points_to_laneset",
           "register_decoder", "softmax_foreground"]
