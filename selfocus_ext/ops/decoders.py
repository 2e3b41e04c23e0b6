"""Fake kernels of the batched lane decoders (``torch.ops.selfocus.decode_*``; the models call the ops):
xs [B, max_lanes, rows] and scores [B, max_lanes], or [K, B, ...] when a head carries a Monte-Carlo
dimension K."""
from __future__ import annotations

import torch

from .. import native  # noqa: F401  (registers torch.ops.selfocus.*)
from .devices import on_device_or_cpu, same_device


def _decoder_fake(op: str, heads: dict, ys: torch.Tensor, max_lanes: int, image_dims, **side: torch.Tensor):
    """``image_dims``: the per-image rank of every head, or a dict of them by head name (heads of different
    ranks; any head may carry the leading K)."""
    same_device(op, **heads)
    first, *others = heads.values()
    on_device_or_cpu(op, first.device, ys=ys, **side)
    dims = image_dims if isinstance(image_dims, dict) else {name: image_dims for name in heads}
    lead = [t.shape[0] for name, t in heads.items() if t.dim() == dims[name] + 2]
    batch = first.shape[1] if first.dim() == dims[next(iter(heads))] + 2 else first.shape[0]
    shape = ([lead[0]] if lead else []) + [batch]
    return first.new_empty(shape + [max_lanes, ys.shape[0]]), first.new_empty(shape + [max_lanes])


@torch.library.register_fake("selfocus::decode_ganet")
def _decode_ganet_fake(hm, pts, intr, ys, sx, sy, crop_top, frame_width, max_lanes=8, *args):
    return _decoder_fake("decode_ganet", dict(kpts_hm=hm, pts_offset=pts, int_offset=intr), ys, max_lanes, 3)


@torch.library.register_fake("selfocus::decode_laneatt")
def _decode_laneatt_fake(cls, reg, anchor_xs, row_ys, ys, sx, sy, crop_top, frame_width, input_width, max_lanes=8,
                         *args):
    return _decoder_fake("decode_laneatt", dict(cls_logits=cls, reg=reg), ys, max_lanes, 2, anchor_xs=anchor_xs,
                         row_ys=row_ys)


@torch.library.register_fake("selfocus::decode_bezier")
def _decode_bezier_fake(logits, curves, ys, sx, sy, crop_top, frame_width, input_width, input_height, max_lanes=8,
                        *args):
    return _decoder_fake("decode_bezier", dict(logits=logits, curves=curves), ys, max_lanes, dict(logits=1, curves=3))


@torch.library.register_fake("selfocus::decode_scnn")
def _decode_scnn_fake(out, lane, rows, ys, sx, sy, crop_top, frame_width, input_width, input_height, max_lanes=8,
                      *args):
    return _decoder_fake("decode_scnn", dict(out=out, lane=lane), ys, max_lanes, 3, sample_rows=rows)


@torch.library.register_fake("selfocus::decode_lstr")
def _decode_lstr_fake(logits, curves, sample_ys, ys, sx, sy, crop_top, frame_width, input_width, input_height,
                      max_lanes=8, *args):
    return _decoder_fake("decode_lstr", dict(logits=logits, curves=curves), ys, max_lanes, 2, sample_ys=sample_ys)


@torch.library.register_fake("selfocus::decode_condlane")
def _decode_condlane_fake(proposal, params, features, range_, ys, sx, sy, crop_top, frame_width, max_lanes=8, *args):
    return _decoder_fake("decode_condlane", dict(proposal=proposal, params=params, features=features, range=range_),
                         ys, max_lanes, 3)


@torch.library.register_fake("selfocus::decode_ufld")
def _decode_ufld_fake(prob, loc, exist, ys, frame_width, frame_height, input_width, max_lanes=4, row_gap=20):
    return _decoder_fake("decode_ufld", dict(prob=prob, loc=loc, exist=exist), ys, max_lanes,
                         dict(prob=3, loc=3, exist=2))


@torch.library.register_fake("selfocus::decode_lstr_published")
def _decode_lstr_published_fake(logits, curves, ys, frame_width, frame_height, max_lanes=4, *args):
    return _decoder_fake("decode_lstr_published", dict(logits=logits, curves=curves), ys, max_lanes, 2)


@torch.library.register_fake("selfocus::decode_bezier_published")
def _decode_bezier_published_fake(logits, curves, ys, frame_width, frame_height, max_lanes=4, *args):
    return _decoder_fake("decode_bezier_published", dict(logits=logits, curves=curves), ys, max_lanes,
                         dict(logits=1, curves=3))


@torch.library.register_fake("selfocus::decode_segmentation_published")
def _decode_segmentation_published_fake(out, lane, sample_rows, frame_rows, ys, frame_width, input_width,
                                        input_height, max_lanes=4, *args):
    return _decoder_fake("decode_segmentation_published", dict(out=out, lane=lane), ys, max_lanes, 3,
                         sample_rows=sample_rows, frame_rows=frame_rows)


@torch.library.register_fake("selfocus::decode_clrnet_published")
def _decode_clrnet_published_fake(cls, lanes, prior_ys, sample_ys, ys, input_width, frame_width, frame_height,
                                  crop_top, max_lanes=4, *args):
    return _decoder_fake("decode_clrnet_published", dict(cls=cls, lanes=lanes), ys, max_lanes, 2, prior_ys=prior_ys,
                         sample_ys=sample_ys)


@torch.library.register_fake("selfocus::decode_laneatt_published")
def _decode_laneatt_published_fake(cls, proposals, prior_ys, sample_ys, ys, input_width, frame_width, frame_height,
                                   max_lanes=4, *args):
    return _decoder_fake("decode_laneatt_published", dict(cls=cls, proposals=proposals), ys, max_lanes, 2,
                         prior_ys=prior_ys, sample_ys=sample_ys)


@torch.library.register_fake("selfocus::decode_ganet_published")
def _decode_ganet_published_fake(kpts_hm, pts_offset, int_offset, ys, input_width, input_height, frame_width,
                                 frame_height, crop_top, max_lanes=16, *args):
    return _decoder_fake("decode_ganet_published",
                         dict(kpts_hm=kpts_hm, pts_offset=pts_offset, int_offset=int_offset), ys, max_lanes, 3)


@torch.library.register_fake("selfocus::decode_condlane_published")
def _decode_condlane_published_fake(hm, params, features, range, ys, input_width, input_height, frame_width,
                                    frame_height, crop_top, max_lanes=16, *args):
    return _decoder_fake("decode_condlane_published", dict(hm=hm, params=params, features=features, range=range),
                         ys, max_lanes, 3)
