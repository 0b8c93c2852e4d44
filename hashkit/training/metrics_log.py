"""The per-code-length metrics log: JSON lines, optionally mirrored to TensorBoard.

Each line is one event: ``{"event": "step", "step": 120, "round": 1, "epoch": 0, "lr": ..., "loss": ...,
"<part>": ...}``, ``{"event": "round", ...}`` or ``{"event": "eval", "round": r, "split": "val", "map": ...}``.
Checkpoints record how many lines the log had; on resume the lines written after that checkpoint are
dropped (they are logged again as training replays), so the log of a resumed run equals the log of an
uninterrupted one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLog:
    """Append-only JSONL writer (rank 0 only); TensorBoard scalars when ``tensorboard`` and installed."""

    def __init__(self, path: Path, *, tensorboard: bool = False, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._tb = None
        #: lines in the file (what a checkpoint records)
        self.lines = 0
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                import warnings

                warnings.warn("train.tensorboard = true but tensorboard is not installed; logging JSONL only",
                              RuntimeWarning, stacklevel=2)
            else:
                self._tb = SummaryWriter(log_dir=str(self.path.parent / "tensorboard"))

    def truncate_to(self, lines: int) -> None:
        """Keep the first ``lines`` lines (the log as it was when the resumed checkpoint was written)."""
        self.lines = lines
        if not self.enabled or not self.path.is_file():
            return
        from hashkit.atomic_io import atomic_write_text

        keep = self.path.read_text().splitlines(keepends=True)[:lines]
        atomic_write_text(self.path, "".join(k if k.endswith("\n") else k + "\n" for k in keep))

    def write(self, event: str, values: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"event": event, **{k: _clean(v) for k, v in values.items()}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(json.dumps(record, sort_keys=False) + "\n")
        except OSError as exc:
            from hashkit.atomic_io import write_error

            raise write_error(self.path, exc) from exc
        self.lines += 1
        if self._tb is not None:
            step = int(values.get("step", 0))
            for key, value in values.items():
                if isinstance(value, (int, float)) and key not in ("step", "round", "epoch"):
                    self._tb.add_scalar(f"{event}/{key}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
