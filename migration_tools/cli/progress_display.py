"""How progress looks: a rich bar on a terminal, a plain `progress:` line at an interval in a pipe.

Both loops poll a `Watch` (cli/progress.py) every POLL_SECONDS until told to stop. The bar shows
elapsed time and rich's estimate; the plain line its own elapsed time, rate and estimate, and
never a carriage return or an escape code.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import click


@dataclass(frozen=True)
class Status:
    """One poll of what is running, as the display shows it."""

    key: str  # what is being measured; a new key restarts elapsed time, rate and estimate
    text: str
    fraction: float | None
    done: float | None = None  # in `unit`, for the rate
    unit: str = ""


class Watch(Protocol):
    """What the loops poll (cli/progress.py's Watch)."""

    def status(self) -> Status | None: ...

INTERVAL_ENV = "PM_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0
POLL_SECONDS = 0.5


def plain_interval() -> float:
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Rate:
    """Elapsed time, rate and estimate of the current key, for the plain lines."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.since = time.monotonic()
        self.first: tuple[float, float, float | None] | None = None  # time, fraction, done at the key's start

    def describe(self, status: Status) -> str:
        now = time.monotonic()
        if status.key != self.key:
            self.key, self.since, self.first = status.key, now, None
        figures = [f"elapsed {clock(now - self.since)}"]
        if status.fraction is not None and self.first is None:
            self.first = (now, status.fraction, status.done)
        elif status.fraction is not None and self.first is not None and now > self.first[0]:
            took = now - self.first[0]
            if status.done is not None and self.first[2] is not None and status.unit:
                figures.append(f"{(status.done - self.first[2]) / took:,.0f} {status.unit}/s")
            speed = (status.fraction - self.first[1]) / took
            if speed > 0:
                figures.append(f"ETA {clock((1 - status.fraction) / speed)}")
        pct = f"; {status.fraction * 100:.0f}%" if status.fraction is not None else ""
        return f"progress: {status.text}{pct} ({', '.join(figures)})"


def plain_loop(watch: Watch, stop: threading.Event) -> None:
    interval = plain_interval()
    rate = Rate()
    next_line = time.monotonic() + interval
    while not stop.wait(min(POLL_SECONDS, interval)):
        status = watch.status()
        if status is None:
            continue
        line = rate.describe(status)
        if time.monotonic() >= next_line:
            next_line = time.monotonic() + interval
            click.echo(line)


def bar_loop(watch: Watch, stop: threading.Event) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stdout, highlight=False)
    bars = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        refresh_per_second=4,
    )
    task = None
    key: str | None = None
    with bars:
        while not stop.wait(POLL_SECONDS):
            status = watch.status()
            if status is None:
                if task is not None:
                    bars.update(task, visible=False)
                continue
            total = None if status.fraction is None else 1000
            completed = 0 if status.fraction is None else status.fraction * 1000
            if task is None:
                task = bars.add_task(status.text, total=total, completed=completed)
            elif status.key != key:
                bars.reset(task, total=total, completed=completed, description=status.text, visible=True)
            else:
                bars.update(task, total=total, completed=completed, description=status.text, visible=True)
            key = status.key
