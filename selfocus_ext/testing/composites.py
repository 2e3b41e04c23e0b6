"""The composite plain-torch formulations that QDrop / MQBench / PyTorch use for the same computations.

These are the baselines of the benchmarks: the fused ops replace exactly these op sequences.
"""
import torch

from selfocus_ext.ops import fake_quant
from selfocus_ext.quant.observers import MIN_SCALE, qmax

ZETA, GAMMA = 1.1, -0.1


def adaround_composite(w, alpha, scale, zero_point, qmin, qmax, hard=False):
    """MQBench's AdaRoundFakeQuantize forward (per-channel scale and zero point as broadcast tensors)."""
    x_floor = torch.floor(w / scale)
    if hard:
        x_int = x_floor + (alpha >= 0).float()
    else:
        x_int = x_floor + ((ZETA - GAMMA) * torch.sigmoid(alpha) + GAMMA).clamp(0, 1)
    x_quant = torch.clamp(x_int + zero_point, qmin, qmax)
    return (x_quant - zero_point) * scale


def adaround_regularizer_composite(alpha, beta):
    h = ((ZETA - GAMMA) * torch.sigmoid(alpha) + GAMMA).clamp(0, 1)
    return (1 - (2 * h - 1).abs().pow(beta)).sum()


def adaround_init_composite(w, scale):
    x_floor = torch.floor(w / scale)
    rest = w / scale - x_floor
    return -torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)


def _round_ste(x):
    return (x.round() - x).detach() + x


def _grad_scale(t, s):
    return (t - t * s).detach() + t * s


def lsq_qdrop_composite(x, delta, zero_point, qmin, qmax, keep_prob, grad_scale):
    """QDrop's UniformAffineQuantizer with a learned step (LSQ grad scale) and its random drop."""
    d = _grad_scale(delta, grad_scale)
    x_int = _round_ste(x / d) + zero_point
    x_quant = torch.clamp(x_int, qmin, qmax)
    x_dequant = (x_quant - zero_point) * d
    if keep_prob < 1.0:
        return torch.where(torch.rand_like(x) < keep_prob, x_dequant, x)
    return x_dequant


def mse_search_loop(v: torch.Tensor, bits: int, signed: bool, candidates: int = 100, p: float = 2.0,
                    shrink_step: float = 0.01) -> torch.Tensor:
    """selfocus_ext.quant.observers.mse_search done channel by channel and candidate by candidate, as a plain
    per-channel MSE clip search is written."""
    out = []
    for c in range(v.shape[0]):
        row = v[c]
        m = float(row.abs().max().clamp(min=MIN_SCALE))
        best, best_err = m, float("inf")
        for i in range(candidates):
            f = 1.0 - shrink_step * i
            if f <= 0:
                break
            s = max(m * f / qmax(bits, signed), MIN_SCALE)
            err = float((fake_quant(row, s, bits, signed) - row).abs().pow(p).mean())
            if err < best_err:
                best, best_err = m * f, err
        out.append(best)
    return torch.tensor(out, dtype=v.dtype)
