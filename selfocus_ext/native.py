"""Loads the compiled extension once, with a clear message when it has not been built."""
import torch  # noqa: F401  (loads libtorch, which the extension links against)

try:
    from . import _C  # noqa: F401  (importing registers torch.ops.selfocus.*)
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "selfocus_ext's native extension (selfocus_ext._C) is not built. Install the package with "
        "`pip install --no-build-isolation .` (or `-e .`) after installing torch; see README.md."
    ) from exc


def cuda_compiled() -> bool:
    """Whether this build contains the CUDA implementations."""
    return bool(_C.cuda_compiled())


def set_device_value_checks(enabled: bool) -> None:
    """Check scale/step values on CUDA tensors (one device-to-host sync per call; on by default)."""
    _C.set_device_value_checks(bool(enabled))
