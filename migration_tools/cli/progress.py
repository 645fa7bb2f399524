"""Live progress while a command works: a bar on a terminal (rich), plain lines at an interval in a pipe.

`watching(...)` wraps a long call. A thread polls what can be known without touching the code
doing the work: PostgreSQL's pg_stat_progress_* views over a connection of its own (pg_dump's
and pg_restore's COPYs, index builds, CLUSTER, ANALYZE), the size of what is being written, the
running migration (from the core's events, through `output.show`) and counters the caller feeds
(`count`: verify-data's tables checked). Progress never fails a command: a poll that fails is
skipped. In a pipe no bar and no carriage return is written: one `progress: ...` line every
`PM_PROGRESS_INTERVAL` seconds (default 10) while something is running.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from migration_tools.cli import progress_display
from migration_tools.cli.progress_display import Status
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.sizes import human_size
from migration_tools.pg import progress as pgp

RECONNECT_SECONDS = 5.0
PURPOSE = "progress"


class Watch:
    def __init__(
        self,
        params: ConnParams | None,
        *,
        expected_rows: dict[str, int] | None = None,
        files: Path | None = None,
        aside: bool = False,
    ) -> None:
        self.params = params
        self.aside = aside
        self.files = files
        self._expected_restore = expected_rows
        self._lock = threading.Lock()
        self._step: str | None = None
        self._counter: tuple[int, int, str] | None = None
        self._conn: Any = None
        self._next_connect = 0.0
        self._tallies: dict[str, pgp.CopyTally] = {}
        self._before = self._sizes()

    # -- fed by the command -------------------------------------------------------------------

    def set_step(self, text: str | None) -> None:
        with self._lock:
            self._step = None if text is None else text.removesuffix(" ...")

    def count(self, done: int, total: int, unit: str = "tables checked") -> None:
        with self._lock:
            self._counter = (done, total, unit)

    # -- polled -------------------------------------------------------------------------------

    def status(self) -> Status | None:
        # The server first, then the step: a step read before a slow query could name a migration
        # that finished while it ran, beside the next one's index build.
        activities = self._activities()
        with self._lock:
            step, counter = self._step, self._counter
        parts: list[str] = [step] if step else []
        fraction: float | None = None
        done: float | None = None
        unit, key = "", step or ""
        if counter is not None:
            parts.append(f"{counter[0]} of {counter[1]} {counter[2]}")
            fraction, done, unit, key = (
                (counter[0] / counter[1] if counter[1] else None),
                counter[0],
                "",
                key + "|count",
            )
        for activity in activities:
            if activity.kind != "copy":
                parts.append(activity.describe())
                fraction, done, unit = activity.fraction, None, ""
                key += f"|{activity.kind}:{activity.index or activity.relation}:{activity.phase}"
                break
        else:
            for tally in self._tallies.values():
                if tally.current:
                    parts.append(tally.describe())
                    fraction, done, unit = tally.fraction, tally.rows_done, "rows"
                    key += "|" + tally.direction
        dumping = self._tallies.get("dump")
        written = self._written() if dumping is not None and dumping.current else None
        if written is not None:
            parts.append(f"{human_size(written)} written")
        if not parts:
            return None
        return Status(
            key,
            ": ".join(parts[:1]) + ("; " + "; ".join(parts[1:]) if parts[1:] else ""),
            fraction,
            done,
            unit,
        )

    def _activities(self) -> list[pgp.Activity]:
        if self.params is None:
            return []
        try:
            if self._conn is None:
                if time.monotonic() < self._next_connect:
                    return []
                self._next_connect = time.monotonic() + RECONNECT_SECONDS
                from migration_tools.pg import databases, db

                self._conn = (
                    databases.connect_maintenance(self.params, PURPOSE)
                    if self.aside
                    else db.connect(self.params, purpose=PURPOSE, timeout=2)
                )
                self._conn.execute("SET statement_timeout = '1s'")
                here = {} if self.aside else pgp.table_rows(self._conn)
                expected = {"dump": here or dict(self._expected_restore or {})}
                expected["restore"] = self._expected_restore or expected["dump"]
                self._tallies = {d: pgp.CopyTally(d, rows) for d, rows in expected.items()}
            found = pgp.read(self._conn, self.params.dbname)
        except Exception:  # progress must never fail the command: drop the connection, try later
            self.close()
            return []
        for tally in self._tallies.values():
            tally.update(found)
        return found

    def _sizes(self) -> dict[str, int]:
        """The size of each file (a directory: its files) in `files`."""
        if self.files is None:
            return {}
        try:
            return {
                p.name: (
                    sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                    if p.is_dir()
                    else p.stat().st_size
                )
                for p in self.files.iterdir()
                if not p.name.endswith(".json")
            }
        except OSError:
            return {}

    def _written(self) -> int | None:
        """The size of the largest file (or directory) in `files` that appeared or grew during the watch."""
        grown = [size for name, size in self._sizes().items() if self._before.get(name) != size]
        return max(grown) if grown else None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


_active: Watch | None = None


def active() -> Watch | None:
    return _active


@contextlib.contextmanager
def watching(
    params: ConnParams | None,
    *,
    expected_rows: dict[str, int] | None = None,
    files: Path | None = None,
    enabled: bool = True,
    aside: bool = False,
) -> Iterator[Watch | None]:
    """Show progress while the body runs (a bar on a terminal, plain lines in a pipe)."""
    global _active
    if not enabled or _active is not None:
        yield _active
        return
    watch = Watch(params, expected_rows=expected_rows, files=files, aside=aside)
    stop = threading.Event()
    tty = sys.stdout.isatty()
    loop = progress_display.bar_loop if tty else progress_display.plain_loop
    thread = threading.Thread(target=_guarded, args=(loop, watch, stop), name="progress", daemon=True)
    _active = watch
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(5)
        _active = None
        watch.close()


def _guarded(loop: Any, watch: Watch, stop: threading.Event) -> None:
    with contextlib.suppress(Exception):  # a display failure must not reach the command
        loop(watch, stop)
