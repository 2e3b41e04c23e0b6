"""Fake kernels of the batched lane decoders (``torch.ops.selfocus.decode_*``; the models call the ops):
xs [B, max_lanes, rows] and scores [B, max_lanes], or [K, B, ...] when a head carries a Monte-Carlo
dimension K."""
from __future__ import annotations

import torch

from .. import _native  # noqa: F401  (registers torch.ops.selfocus.*)


def _decoder_fake(first: torch.Tensor, image_dims: int, ys: torch.Tensor, max_lanes: int, *others: torch.Tensor):
    lead = [t.shape[0] for t in (first,) + others if t.dim() == image_dims + 2]
    batch = first.shape[1] if first.dim() == image_dims + 2 else first.shape[0]
    shape = ([lead[0]] if lead else []) + [batch]
    return first.new_empty(shape + [max_lanes, ys.shape[0]]), first.new_empty(shape + [max_lanes])


@torch.library.register_fake("selfocus::decode_ganet")
def _decode_ganet_fake(hm, pts, intr, ys, sx, sy, crop_top, frame_width, max_lanes=8, *args):
    return _decoder_fake(hm, 3, ys, max_lanes, pts, intr)


@torch.library.register_fake("selfocus::decode_laneatt")
def _decode_laneatt_fake(cls, reg, anchor_xs, row_ys, ys, sx, sy, crop_top, frame_width, input_width, max_lanes=8,
                         *args):
    return _decoder_fake(cls, 2, ys, max_lanes, reg)


@torch.library.register_fake("selfocus::decode_bezier")
def _decode_bezier_fake(logits, curves, ys, sx, sy, crop_top, frame_width, input_width, input_height, max_lanes=8,
                        *args):
    return _decoder_fake(logits, 1, ys, max_lanes, curves)


@torch.library.register_fake("selfocus::decode_scnn")
def _decode_scnn_fake(out, lane, rows, ys, sx, sy, crop_top, frame_width, input_width, input_height, max_lanes=8,
                      *args):
    return _decoder_fake(out, 3, ys, max_lanes, lane)
