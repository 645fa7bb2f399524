"""What a run did and when: its steps with start, end and outcome, and the warnings and errors it logged.

One `Recorder` is active per command (the monitor activates it); the deploy code marks its steps
with `with timeline.step("backup"):` and the CLI passes the core's events on (`timeline.event`),
which turn a plan's migrations into steps of their own. With no recorder active every call is a
no-op, so code that marks steps runs the same without a report.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from migration_tools.core.events import Event
from migration_tools.core.redact import redact

MAX_MESSAGES = 200  # warnings and errors kept for the report; the log has them all


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso_ms(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Step:
    name: str
    kind: str  # "step", "migration", "unapply" (a migration reversed by an undo) or "undo"
    started: datetime
    finished: datetime | None = None
    outcome: str = "running"  # running | ok | failed | unfinished
    detail: str = ""

    def as_dict(self, until: datetime) -> dict[str, Any]:
        finished = self.finished or until
        return {
            "name": self.name,
            "kind": self.kind,
            "started_at": iso_ms(self.started),
            "finished_at": iso_ms(finished),
            "seconds": round((finished - self.started).total_seconds(), 3),
            "outcome": self.outcome if self.finished else "unfinished",
            "detail": self.detail,
        }


class _Capture(logging.Handler):
    """Warnings and errors logged on the kit's logger while the recorder is active."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.WARNING)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(record.getMessage())
        except Exception:  # a record that does not format is not the report's business
            return
        self.recorder.message("error" if record.levelno >= logging.ERROR else "warning", text)


@dataclass
class Recorder:
    steps: list[Step] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, name: str, kind: str = "step") -> Step:
        opened = Step(name, kind, now())
        with self._lock:
            self.steps.append(opened)
        return opened

    def close(self, opened: Step, outcome: str, detail: str = "") -> None:
        with self._lock:
            if opened.finished is None:
                opened.finished, opened.outcome = now(), outcome
                opened.detail = detail or opened.detail

    def running(self, name: str | None = None, kind: str | None = None) -> Step | None:
        with self._lock:
            for candidate in reversed(self.steps):
                if (
                    candidate.finished is None
                    and name in (None, candidate.name)
                    and kind in (None, candidate.kind)
                ):
                    return candidate
        return None

    def message(self, level: str, text: str) -> None:
        with self._lock:
            if len(self.messages) < MAX_MESSAGES:
                self.messages.append({"at": iso_ms(now()) or "", "level": level, "text": text})

    def on_event(self, event: Event) -> None:
        if event.kind == "migration":
            kind = "unapply" if event.backwards else "migration"
            if event.phase == "start":
                self.close_open_migrations("failed")
                self.open(event.label, kind)
            elif (found := self.running(event.label, kind)) is not None:
                self.close(found, "ok", f"{event.seconds:.2f}s")
        elif event.kind == "fail":
            self.close_open_migrations("failed", event.text)

    def close_open_migrations(self, outcome: str, detail: str = "") -> None:
        while (found := self.running(kind="migration") or self.running(kind="unapply")) is not None:
            self.close(found, outcome, detail)

    def snapshot(self) -> dict[str, Any]:
        until = now()
        with self._lock:
            return {
                "steps": [s.as_dict(until) for s in self.steps],
                "messages": [dict(m) for m in self.messages],
            }


_active: Recorder | None = None
_capture: _Capture | None = None


def activate() -> Recorder:
    """Start recording (a recorder already active is kept, so nested users share it)."""
    global _active, _capture
    if _active is None:
        _active = Recorder()
        _capture = _Capture(_active)
        logging.getLogger("migration_kit").addHandler(_capture)
    return _active


def deactivate(recorder: Recorder) -> None:
    global _active, _capture
    if _active is recorder:
        if _capture is not None:
            logging.getLogger("migration_kit").removeHandler(_capture)
        _active = _capture = None


def current() -> Recorder | None:
    return _active


class Handle:
    """What the body of `step()` may set: the outcome (when not plain success) and a detail."""

    def __init__(self) -> None:
        self.outcome = "ok"
        self.detail = ""


@contextlib.contextmanager
def step(name: str, kind: str = "step") -> Iterator[Handle]:
    """Mark a step; failed when the body raises. A step of the same name already open is not doubled."""
    handle = Handle()
    recorder = _active
    if recorder is None or recorder.running(name, kind) is not None:
        yield handle
        return
    opened = recorder.open(name, kind)
    try:
        yield handle
    except BaseException as exc:
        text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}".rstrip(": ")
        recorder.close(opened, "failed", redact(str(text)))
        raise
    recorder.close(opened, handle.outcome, handle.detail)


def event(happened: Event) -> None:
    """The CLI passes every core event here: a plan's migrations become steps, a failure ends them."""
    recorder = _active
    if recorder is not None:
        recorder.on_event(happened)
