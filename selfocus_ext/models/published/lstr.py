"""LSTR (transformer, curve parameters) as pytorch-auto-drive publishes it for CULane at 800x288 (whole
image): the reduced ResNet-18 ("ResNet-18s": 1, 2, 2, 2 blocks of 32-256 channels, hidden size 64) and
ResNet-34 (hidden size 128), a two-layer encoder and decoder with 2 heads, 7 lane queries.

Heads: ``logits`` [B, 7, 2] (confidence, foreground column) and ``curves`` [B, 7, 8] = (upper, lower, k'',
f'', m'', n'', b'', b''') in normalised input coordinates (semantic). Post-processing as published: a
query is a lane when its probability exceeds 0.95 (at most 4), its cubic-with-projection curve is read on
18 rows every 20 original pixels from the bottom and a point is kept inside the image and between the lane's
upper and lower ends.

The encoder and decoder reuse the zoo's transformer layers (every projection an ``nn.Linear``, so it is
quantized); the converter splits the implementation's fused attention input projection into them.
"""
from __future__ import annotations

import re
from typing import Dict

import torch
from torch import nn

from ..base import HeadSpec
from .base import PublishedLaneModel
from ..lstr import MLP, DecoderLayer, EncoderLayer, QUERIES, sine_position
from .catalog import PublishedModel, publish
from .checkpoint import CheckpointLayout
from .resnet import DEPTHS, ResNetTrunk
from .segmentation import CULANE_INPUT


def _split_attention(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``X.in_proj_weight`` / ``X.in_proj_bias`` (query, key and value stacked) -> ``X.q/k/v.weight/bias``."""
    out = {}
    for key, value in state.items():
        m = re.match(r"(.*)\.in_proj_(weight|bias)$", key)
        if m:
            for part, chunk in zip("qkv", value.chunk(3, dim=0)):
                out[f"{m.group(1)}.{part}.{m.group(2)}"] = chunk.clone()
        else:
            out[key] = value
    return out


PAD_LAYOUT = CheckpointLayout(
    "pytorch-auto-drive", top_keys=("model",),
    renames=((r"^transformer\.encoder\.layers\.(\d+)\.self_attn\.", r"encoder.\1.attn."),
             (r"^transformer\.encoder\.layers\.", "encoder."),
             (r"^transformer\.decoder\.layers\.(\d+)\.multihead_attn\.", r"decoder.\1.cross_attn."),
             (r"^transformer\.decoder\.layers\.", "decoder."),
             (r"^transformer\.decoder\.norm\.", "decoder_norm."),
             (r"\.out_proj\.", ".out."), (r"\.linear1\.", ".ff.0."), (r"\.linear2\.", ".ff.3."),
             (r"^query_embed\.weight$", "query_embed"),
             (r"^(specific|shared)_embed\.layers\.(\d)\.", lambda m: f"{m.group(1)}.{2 * int(m.group(2))}.")),
    transform=_split_attention)


class LSTRPublished(PublishedLaneModel):
    lines_format = ("pad", {"x_type": "float", "y_type": "int"})
    family = "curve"
    head_layers = ["class_embed", "specific.4", "shared.4"]
    heads = [HeadSpec("logits", "logits", "confidence", conf_fn="softmax1"),
             HeadSpec("curves", "curves", "semantic", mask_from="logits")]

    def __init__(self, backbone: str = "resnet18s", model_input=CULANE_INPUT):
        super().__init__(model_input)
        if backbone == "resnet18s":
            self.backbone = ResNetTrunk((1, 2, 2, 2), widths=(32, 64, 128, 256), stem_width=32, returns=("layer4",))
            dim, channels = 64, 256
        else:
            self.backbone = ResNetTrunk(DEPTHS[backbone], returns=("layer4",))
            dim, channels = 128, 512
        self.input_proj = nn.Conv2d(channels, dim, 1)
        self.query_embed = nn.Parameter(torch.zeros(QUERIES, dim))
        self.encoder = nn.ModuleList(EncoderLayer(dim, 2, 4 * dim, 0.1) for _ in range(2))
        self.decoder = nn.ModuleList(DecoderLayer(dim, 2, 4 * dim, 0.1) for _ in range(2))
        self.decoder_norm = nn.LayerNorm(dim)
        self.class_embed = nn.Linear(dim, 2)
        self.specific = MLP(dim, 4)  # upper, lower, b'', b'''
        self.shared = MLP(dim, 4)  # k'', f'', m'', n'', averaged over the queries
        w, h = model_input.size
        fh, fw = -(-h // 32), -(-w // 32)
        # a constant of the graph (an exporter would otherwise trace its sines and cosines)
        self.register_buffer("pos", sine_position(fh, fw, dim).flatten(1).t()[None], persistent=False)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f = self.input_proj(self.backbone(x)["layer4"])
        B, D, fh, fw = f.shape
        src = f.flatten(2).transpose(1, 2)
        pos = self.pos if self.pos.shape[1] == fh * fw else sine_position(fh, fw, D).to(f).flatten(1).t()[None]
        for layer in self.encoder:
            src = layer(src, pos)
        query_pos = self.query_embed[None].expand(B, -1, -1)
        tgt = torch.zeros_like(query_pos)
        for layer in self.decoder:
            tgt = layer(tgt, src, pos, query_pos)
        hs = self.decoder_norm(tgt)
        specific, shared = self.specific(hs), self.shared(hs).mean(dim=-2, keepdim=True)
        curves = torch.cat([specific[..., :2], shared.expand_as(specific), specific[..., 2:]], -1)
        return {"logits": self.class_embed(hs), "curves": curves}

    # decoding: the batched native decoder (csrc/core/decoders/published/) with the implementation's
    # post-processing as its reference (selfocus_ext/decoders/pad_curves.py)
    decoder_name = "pad-lstr"
    supports_monte_carlo = True


for _bb, _size, _name in (("resnet18s", "s", "lstr-r18s"), ("resnet34", "m", "lstr-r34")):
    publish(PublishedModel(_name, "lstr", "pytorch-auto-drive", _bb, _size, "culane", (800, 288), 0.0, (PAD_LAYOUT,),
                           lambda bb=_bb, **kw: LSTRPublished(bb, **kw)))
