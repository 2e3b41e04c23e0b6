"""How much of a runtime's F1 difference float rounding alone can explain.

Two correct runtimes sum a convolution in different orders, so their float results differ in the last bits.
Where an activation sits on a rounding boundary of its quantizer, that difference moves it one whole step,
and at 4 bits one step is a sixteenth of the range. ``ulp_noise`` imitates this in PyTorch: every quantized
layer's input is multiplied by (1 + k * 2^-23) with k drawn uniformly from -ulps..ulps (a few float32 units
in the last place), before its quantizer. The F1 spread of the same model over a few noise seeds is the
floor under which a runtime cannot be told apart from the PyTorch model.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, List, Optional

import torch
from torch import nn

FLOAT32_ULP = 2.0 ** -23


def _quantized_layers(model: nn.Module) -> List[nn.Module]:
    return [m for m in model.modules() if hasattr(m, "input_quantizer")]


@contextlib.contextmanager
def ulp_noise(model: nn.Module, ulps: int, seed: int) -> Iterator[nn.Module]:
    """Within the block, every quantized layer of ``model`` sees its input times (1 + k * 2^-23), k uniform in
    -ulps..ulps, drawn from one generator seeded with ``seed`` (the same seed gives the same noise)."""
    if not isinstance(ulps, int) or ulps < 0:
        raise ValueError(f"ulps: expected a non-negative integer, got {ulps!r}")
    layers = _quantized_layers(model)
    if not layers:
        raise ValueError("model: no quantized layers (a quantized or frozen model is expected)")
    gen = torch.Generator().manual_seed(int(seed))

    def perturb(_module, args):
        x = args[0]
        if ulps == 0 or not torch.is_floating_point(x):
            return None
        k = torch.randint(-ulps, ulps + 1, x.shape, generator=gen).to(device=x.device, dtype=x.dtype)
        return (x * (1 + k * FLOAT32_ULP),) + tuple(args[1:])

    handles = [layer.register_forward_pre_hook(perturb) for layer in layers]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def rounding_spread(model: nn.Module, score: Callable[[nn.Module], float], ulps: int = 4,
                    seeds: int = 5, clean: Optional[float] = None) -> Dict[str, object]:
    """``score(model)`` (e.g. the test-set F1) without noise and under ``ulp_noise`` with seeds 0..seeds-1:
    the clean value, every noisy value and their range. ``clean``: the noise-free score when the caller has it
    already (it is not measured again)."""
    if seeds < 1:
        raise ValueError(f"seeds: expected at least 1, got {seeds}")
    clean = float(score(model) if clean is None else clean)
    noisy = []
    for s in range(seeds):
        with ulp_noise(model, ulps, s):
            noisy.append(float(score(model)))
    return dict(clean=clean, noisy=noisy, low=min(noisy + [clean]), high=max(noisy + [clean]), ulps=ulps)
