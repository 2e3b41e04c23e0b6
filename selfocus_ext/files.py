"""Run files (quantized models, checkpoints, lanes, progress records): written atomically (a temporary file,
then a rename, so an interruption leaves the old file or the new one, never half of one), tensor files
carrying a SHA-256 of their content, and read back without running code from the file (``torch.load`` with
``weights_only=True``). A file that cannot be read or whose checksum does not match raises
:class:`DamagedFileError` naming the file and what to do."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from typing import Any, Callable, Dict

import torch

CHECKSUM_KEY = "sha256"


class DamagedFileError(ValueError):
    """A run file that is truncated, corrupted or not one of ours."""


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then the rename; no temporary is left behind."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` through a temporary file and a rename."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _dump_json(obj: Any, tmp: str) -> None:
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)


def atomic_write_text(text: str, path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_json(obj: Any, path: str) -> None:
    atomic_write(path, lambda tmp: _dump_json(obj, tmp))


def read_json(path: str, remedy: str) -> Any:
    """The JSON document in ``path``; a truncated or invalid one raises DamagedFileError with ``remedy``."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFileError(f"{path} is damaged ({type(exc).__name__}: {exc}); {remedy}") from None


def _feed(h, obj: Any) -> None:
    """Hashes a nested structure of dicts, lists, tensors and plain values, with its types and shapes."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"run files hold dicts, lists, tensors and plain values, not {type(obj).__name__}")


def digest(obj: Any) -> str:
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def save_checked(obj: Dict[str, Any], path: str) -> None:
    """Atomic ``torch.save`` of the dict ``obj`` with the SHA-256 of its content."""
    if CHECKSUM_KEY in obj:
        raise ValueError(f"save_checked: the key {CHECKSUM_KEY!r} is reserved")
    atomic_save({**obj, CHECKSUM_KEY: digest(obj)}, path)


def load_checked(path: str, remedy: str) -> Dict[str, Any]:
    """A dict saved by :func:`save_checked`, loaded with ``weights_only=True`` and verified."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError,
            AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedFileError(f"{path} cannot be read ({first[:200]}); {remedy}") from None
    if not isinstance(saved, dict) or CHECKSUM_KEY not in saved:
        raise DamagedFileError(f"{path} is not a selfocus_ext run file (no checksum); {remedy}")
    content = {k: v for k, v in saved.items() if k != CHECKSUM_KEY}
    try:
        ok = digest(content) == saved[CHECKSUM_KEY]
    except TypeError:
        ok = False
    if not ok:
        raise DamagedFileError(f"{path} is damaged (its content does not match its checksum); {remedy}")
    return content
