"""Head outputs made from training targets: the oracle the decoder tests and benchmarks decode."""
import numpy as np
import torch

from ..models.condlane import CONV_WEIGHTS, FEATURES


def family(name: str) -> str:
    return name.rsplit("-", 1)[0]


def outputs_from_targets(name, m, t):
    """Head outputs of zoo model ``name`` (model ``m``) that decode exactly to the lanes of its training targets
    ``t`` (``m.targets(slots)``): confident logits where the targets put a lane, the targets' geometry as the
    regression outputs. A decoder fed these must return the labelled lanes."""
    if family(name) == "ganet":
        return {"kpts_hm": torch.logit(t["hm"].clamp(1e-4, 1 - 1e-4)), "pts_offset": t["pts"], "int_offset": t["int"]}
    if family(name) in ("scnn", "resa"):
        return {"out": torch.nn.functional.one_hot(t["seg"], 5).permute(0, 3, 1, 2).float() * 20,
                "lane": (t["exist"] * 2 - 1) * 10}
    if family(name) == "laneatt":
        logits = torch.stack([torch.zeros(t["label"].shape), (t["label"] * 2 - 1).float() * 10], -1)
        return {"cls_logits": logits, "reg": torch.cat([t["length"][..., None], t["off"]], -1)}
    if family(name) == "lstr":
        # each GT lane on its own query, its curve fitted by least squares with the pole f at -1 (the decoder
        # takes any per-query curve; sharing k, f, m, n across queries is the model's constraint)
        B = len(t["xs"])
        logits = torch.tensor([10.0, -10.0]).repeat(B, 7, 1)
        curves = torch.zeros(B, 7, 8)
        ys = m.sample_ys.astype(np.float64)
        basis = np.stack([1 / (ys + 1) ** 2, 1 / (ys + 1), np.ones_like(ys), ys], 1)
        for b in range(B):
            for g, (xs, ends) in enumerate(zip(t["xs"][b], t["ends"][b])):
                ok = np.isfinite(xs)
                k, mm, n, slope = np.linalg.lstsq(basis[ok], xs[ok].astype(np.float64), rcond=None)[0]
                q = 1 + g
                logits[b, q] = torch.tensor([-10.0, 10.0])
                curves[b, q] = torch.tensor([float(ends[0]) - 0.01, float(ends[1]) + 0.01, k, -1.0, mm, n, slope, 0.0])
        return {"logits": logits, "curves": curves}
    if family(name) == "condlane":
        # lane g: a logit at its start cell, feature channel g = -(column - x)^2 (the location conv picks it
        # with weight 1), channel 4 + g = x - column (the offset conv reads it), range on its rows
        (h8, w8), (h16, w16) = m.grid8, m.grid16
        B = len(t["cells"])
        prop = torch.full((B, 1, h16, w16), -10.0)
        params = torch.zeros(B, 2 * CONV_WEIGHTS, h16, w16)
        feats = torch.zeros(B, FEATURES, h8, w8)
        rng = torch.full((B, h8, h16, w16), -10.0)
        cols = torch.arange(w8, dtype=torch.float32)
        for b in range(B):
            for g, ((r, c), xs) in enumerate(zip(t["cells"][b], t["xs"][b])):
                x = torch.from_numpy(xs)
                ok = torch.isfinite(x)
                prop[b, 0, r, c] = 10.0
                params[b, g, r, c] = 1.0
                params[b, CONV_WEIGHTS + 4 + g, r, c] = 1.0
                feats[b, g] = torch.where(ok[:, None], -4.0 * (cols[None] - torch.nan_to_num(x)[:, None]) ** 2, 0.0)
                feats[b, 4 + g] = torch.where(ok[:, None], torch.nan_to_num(x)[:, None] - cols[None], 0.0)
                rng[b, ok, r, c] = 10.0
        return {"proposal": prop, "params": params, "features": feats, "range": rng}
    # bezier: put each GT curve on its own query
    B, Q = len(t["curves"]), m.queries
    logits = torch.full((B, Q), -10.0)
    curves = torch.zeros(B, Q, 4, 2)
    for b, c in enumerate(t["curves"]):
        for g in range(len(c)):
            q = 2 + 6 * g
            logits[b, q] = 10.0
            curves[b, q] = torch.from_numpy(c[g])
    return {"logits": logits, "curves": curves}
