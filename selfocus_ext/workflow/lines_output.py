"""Predictions written in the data set's own files while a model is scored: one ``.lines.txt`` per CULane
test image under a directory mirroring the image paths (a published model's as its implementation's test
script writes them, a zoo model's with ``lanes.formats.format_culane_lines``), or TuSimple's JSON lines."""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np
import torch

from ..data.culane_files import lines_path
from ..files import atomic_write_text
from ..lanes.formats import format_culane_lines, lanes_to_tusimple


class LinesWriter:
    """Called with each batch's head outputs and labels (``workflow.evaluation.evaluate``'s ``on_outputs``);
    ``close()`` finishes the TuSimple file. ``metric``: "culane" or "tusimple"."""

    def __init__(self, model, out_dir: str, metric: str):
        if metric not in ("culane", "tusimple"):
            raise ValueError(f"--write-lines: predictions are written for CULane or TuSimple data, not {metric!r}")
        self.model, self.out_dir, self.metric = model, out_dir, metric
        self.written = 0
        self._records: List[str] = []
        os.makedirs(out_dir, exist_ok=True)

    def __call__(self, outputs: Dict[str, torch.Tensor], labels: List[dict]) -> None:
        if any("path" not in lab for lab in labels):
            raise ValueError("--write-lines needs test images with file paths (--data culane:ROOT or tusimple:ROOT)")
        if self.metric == "tusimple":
            self._tusimple(outputs, labels)
            return
        if hasattr(self.model, "decode_points"):  # a published model: its implementation's lanes and text
            images, _ = self.model.decode_points(outputs)
            texts = [self.model.lines_text(lanes) for lanes in images]
        else:
            texts = [format_culane_lines(lanes) for lanes in self.model.decode(outputs).to_points()]
        for text, lab in zip(texts, labels):
            path = lines_path(self.out_dir, lab["path"])
            atomic_write_text(text, path)
            self.written += 1

    def _tusimple(self, outputs, labels) -> None:
        xs = self.model.decode(outputs).xs.numpy()
        rows = self.model.model_input.frame.ys.astype(np.float64)
        for lane_xs, lab in zip(xs, labels):
            self._records.append(json.dumps({"raw_file": lab["path"], "lanes": lanes_to_tusimple(lane_xs, decimals=0),
                                             "h_samples": [int(y) for y in rows], "run_time": 0}))
            self.written += 1

    def close(self) -> str:
        """Where the predictions are: the directory (CULane) or the JSON-lines file (TuSimple)."""
        if self.metric == "tusimple":
            path = os.path.join(self.out_dir, "predictions.json")
            atomic_write_text("".join(r + "\n" for r in self._records), path)
            return path
        return self.out_dir
