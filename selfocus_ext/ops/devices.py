"""Device checks of the fake kernels. A meta tensor mixed with real ones dispatches to the fake kernel, which
would otherwise hand back uninitialised memory on the real tensors' device: the fakes repeat the kernels'
device rules."""
from __future__ import annotations

import torch


def same_device(op: str, **tensors: torch.Tensor) -> None:
    """All of ``tensors`` on the first one's device."""
    (ref_name, ref_t), *rest = tensors.items()
    for name, t in rest:
        if t.device != ref_t.device:
            raise RuntimeError(
                f"{op}: {name} is on {t.device} but {ref_name} is on {ref_t.device}; "
                "all tensors must be on the same device"
            )


def on_device_or_cpu(op: str, device: torch.device, **tensors: torch.Tensor) -> None:
    """Small side inputs (rows, anchors) that the kernels copy to the CPU: on ``device`` or on the CPU."""
    for name, t in tensors.items():
        if t.device != device and t.device.type != "cpu":
            raise RuntimeError(f"{op}: {name} is on {t.device}; it must be on the heads' device ({device}) or the CPU")
