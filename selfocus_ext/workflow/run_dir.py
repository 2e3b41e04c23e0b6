"""A tune run's directory: what defines the run (run.json), what its stages finished (progress.json), and
the files each stage leaves. Every file is written atomically; a resumed run reads what is recorded."""
from __future__ import annotations

import os
import sys
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Dict, Optional

import torch

from ..files import atomic_write_json, load_checked, read_json, save_checked

RUN_FILE = "run.json"
PROGRESS_FILE = "progress.json"


class UsageError(ValueError):
    """Bad arguments or a directory that cannot hold the run: one line for the user, no traceback."""


@dataclass(frozen=True)
class RunSettings:
    """What defines a run (saved as run.json; --resume requires the same)."""

    model: str
    bits: str
    method: str
    data: str
    calib: int
    budget: str
    iters: Optional[int]
    batch_size: Optional[int]
    test: Optional[int]
    top_k: Optional[int]
    lam: float
    keep_prob: Optional[float]
    seed: int
    weight_observer: Optional[str] = None  # None: the method's
    first_last_8bit: bool = True  # the first layer and the heads' output layers at 8 bits
    keep_tuned: bool = False  # keep the tuned model even when the held-out check prefers the start
    v_lr: Optional[float] = None  # None: recon.config's rates
    step_lr: Optional[float] = None
    checkpoint: Optional[str] = None  # a published model's weights (absolute path)
    anchors: Optional[str] = None  # LaneATT's anchor frequency file (absolute path)
    matmul_bits: Optional[int] = None  # products of two activations quantized at these bits (None: float)


class StageSeconds(dict):
    """Seconds per stage; setting one also notes the process's peak resident memory so far in ``peak_mb``
    (the kernel's running maximum: the stage that raises it holds the run's peak)."""

    def __init__(self, seconds: Dict[str, float], peak_mb: Dict[str, float]):
        super().__init__(seconds)
        self.peak_mb = peak_mb

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, value)
        self.peak_mb[key] = peak_rss_mb()

    def setdefault(self, key: str, value: float) -> float:
        if key not in self:
            self[key] = value
        return self[key]

    def update(self, *args, **kw) -> None:
        for k, v in dict(*args, **kw).items():
            self[k] = v


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # (not on Windows)
        return 0.0
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


class RunDir:
    """The run's directory and its progress record (one entry per finished stage, plus "seconds" and the
    peak resident memory reached by the end of each timed stage, "peak_mb")."""

    def __init__(self, out: str, progress: Optional[Dict[str, Any]] = None):
        self.out = out
        self.progress: Dict[str, Any] = progress if progress is not None else {}
        self.progress["seconds"] = StageSeconds(self.progress.get("seconds", {}),
                                                self.progress.setdefault("peak_mb", {}))

    @property
    def seconds(self) -> Dict[str, float]:
        return self.progress["seconds"]

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def has(self, key: str) -> bool:
        return key in self.progress

    def record(self, key: str, value: Any) -> None:
        """Records a stage's result and saves the progress record."""
        self.progress[key] = value
        self.save()

    def save(self) -> None:
        atomic_write_json(self.progress, self.path(PROGRESS_FILE))

    def redo_hint(self, stage: str) -> str:
        return (f"delete it and the entry {stage!r} of {self.path(PROGRESS_FILE)}, then --resume to make it again "
                "(or start the run again in a new --out directory)")

    def save_lanes(self, key: str, xs: torch.Tensor, counts: Optional[torch.Tensor] = None) -> None:
        save_checked({"xs": xs, "counts": counts}, self.path(f"lanes-{key}.pt"))

    def load_lanes(self, key: str) -> torch.Tensor:
        return load_checked(self.path(f"lanes-{key}.pt"), self.redo_hint(key))["xs"]

    def load_counts(self, key: str) -> Optional[torch.Tensor]:
        return load_checked(self.path(f"lanes-{key}.pt"), self.redo_hint(key)).get("counts")

    def load_file(self, stage: str) -> Any:
        """``{stage}.pt`` verified against its checksum."""
        return load_checked(self.path(f"{stage}.pt"), self.redo_hint(stage))

    def returned(self) -> str:
        """The stage whose model quantized.pt holds: "tuned" when the held-out check kept it, else "calibrated"."""
        kept = self.progress.get("kept") or {}
        return "tuned" if kept.get("kept") == "tuned" else "calibrated"


def claim(out: str, settings: RunSettings, resume: bool) -> RunDir:
    """Claims ``out`` for this run; with ``resume``, returns what earlier sessions of the same run finished."""
    wanted = asdict(settings)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file; give a directory (new or empty, or a run to --resume)")
    run_file = os.path.join(out, RUN_FILE)
    if os.path.isfile(run_file):
        saved = read_json(run_file, "start the run again in a new --out directory")
        if isinstance(saved, dict):  # settings added after the run was made count as their defaults
            saved = {**{f.name: f.default for f in fields(RunSettings) if f.default is not MISSING}, **saved}
        if not resume:
            raise UsageError(f"--out {out} holds another run ({saved.get('method')} on {saved.get('model')}); "
                             "pass --resume to continue it or choose another directory")
        if saved != wanted:
            diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
            raise UsageError(f"--resume: {out} holds a run with other settings (saved, given): {diff}")
        path = os.path.join(out, PROGRESS_FILE)
        if os.path.isfile(path):
            return RunDir(out, read_json(path, "delete it to redo every stage of the run (its files are made again)"))
        return RunDir(out)
    if os.path.isdir(out) and os.listdir(out) and not resume:
        raise UsageError(f"--out {out} is not empty and holds no run; choose an empty or new directory")
    os.makedirs(out, exist_ok=True)
    atomic_write_json(wanted, run_file)
    return RunDir(out)
