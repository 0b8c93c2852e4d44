"""Progress bars for every long loop (training epochs and steps, encoding, evaluation), all made here.

On a terminal a bar refreshes at most twice a second. When stderr is not a terminal (a log file, a batch
job) it refreshes at most every 30 seconds, plus once when it starts and once when it ends, and nothing
forces more: postfix updates (the running loss) never trigger a refresh of their own, and tqdm's monitor
thread cannot shorten the interval. So a log of a long run holds a few lines per bar, not one per step.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, TextIO

#: seconds between refreshes on a terminal / into a file
TERMINAL_INTERVAL = 0.5
FILE_INTERVAL = 30.0


def refresh_interval(stream: TextIO) -> float:
    isatty = getattr(stream, "isatty", None)
    return TERMINAL_INTERVAL if isatty is not None and isatty() else FILE_INTERVAL


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, leave: bool = True, initial: int = 0,
                 file: TextIO | None = None):
    """A tqdm bar on stderr (or ``file``) with the refresh policy of this module; disabled when not ``enabled``."""
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    interval = refresh_interval(stream)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, leave=leave, initial=initial,
                file=stream, dynamic_ncols=True, mininterval=interval, maxinterval=interval)


def set_postfix(bar, **values: Any) -> None:
    """Show ``values`` beside the bar at its next regular refresh (never forces one)."""
    bar.set_postfix(refresh=False, **values)
