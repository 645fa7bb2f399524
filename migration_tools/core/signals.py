"""SIGINT and SIGTERM, handled the same way by every command.

Either signal raises `Interrupted` in the main thread. psycopg cancels a statement it is waiting
for when interrupted this way (so a migration queued for a lock does not stay queued on the
server), transactions roll back on the way out, and each command turns the interruption into
its one line: what state the database is in and the next command. During an undo a second
signal is noted and ignored: the undo is what keeps the database in a known state.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The operator (Ctrl-C) or a supervisor (SIGTERM) asked the command to stop."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install() -> None:
    """Route SIGINT and SIGTERM to `Interrupted`; call once, from the main thread."""
    for sig in HANDLED:
        signal.signal(sig, _interrupt)


@contextlib.contextmanager
def shielded(say: Callable[[str], None], what: str = "the undo") -> Iterator[None]:
    """While the block runs, a signal is told and ignored instead of interrupting it."""

    def note(signum: int, _frame: FrameType | None) -> None:
        say(f"{signal.Signals(signum).name} received during {what}: ignored; {what} keeps the "
            "database in a known state and finishes first")

    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    try:
        for sig in HANDLED:
            signal.signal(sig, note)
    except ValueError:  # not the main thread: nothing to shield
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def describe(exc: BaseException) -> str:
    """'SIGTERM' for an Interrupted, 'SIGINT' for a plain KeyboardInterrupt."""
    return exc.signame if isinstance(exc, Interrupted) else "SIGINT"
