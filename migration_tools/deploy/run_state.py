"""A migrate run that did not finish, remembered until someone resolves it.

While `migrate` (or full-deploy's migrate step) runs, `<workdir>/.migration_kit/run_<db>.json`
(0600) says what it is doing: which migrations of the run were applied and committed, and the
pre-migrate backup. A run that ends in a known state removes it. A run killed outright
(SIGKILL, the machine going down) or whose undo could not reach the database leaves it, and the
next `status` and `migrate` say what that run left and the command that returns to the state
before it. Once the database is back to that state (every migration of the run unapplied), the
file is dropped by the next reader.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migration_tools.backup import metadata
from migration_tools.core.events import Event, Report
from migration_tools.core.runtime import Kit

STATE_DIR = ".migration_kit"


@dataclass
class RunState:
    database: str
    command: str
    started_at: str
    host: str
    pid: int
    backup: str | None
    one_transaction: bool
    planned: list[str] = field(default_factory=list)  # app.name, in plan order
    applied: list[str] = field(default_factory=list)  # app.name, committed by the run

    def describe(self) -> str:
        if self.applied:
            applied = f"{len(self.applied)} migration(s) of it stay applied: {', '.join(self.applied)}"
        else:
            applied = "none of its migrations is applied"
        back = (f"python rollback_manager.py rollback {self.backup} --yes" if self.backup
                else "python rollback_manager.py emergency-rollback")
        return (f"an earlier {self.command} (pid {self.pid} on {self.host}, started {self.started_at}) did "
                f"not finish; {applied}; to return to the state before it: {back}")


def path_for(kit: Kit) -> Path:
    return kit.paths.root / STATE_DIR / f"run_{kit.params.dbname}.json"


class Tracker:
    """Writes the state file as the run goes; `done()` removes it."""

    def __init__(
        self, kit: Kit, command: str, planned: list[str], backup: Path | None, one_transaction: bool
    ) -> None:
        self.path = path_for(kit)
        self.state = RunState(
            database=kit.params.dbname, command=command, started_at=metadata.iso(metadata.now_utc()),
            host=socket.gethostname(), pid=os.getpid(), backup=backup.name if backup else None,
            one_transaction=one_transaction, planned=planned,
        )
        metadata.ensure_private_dir(self.path.parent)
        self._write()

    def follow(self, report: Report) -> Report:
        """`report`, also noting each migration this run commits."""

        def tracked(event: Event) -> None:
            committed = not self.state.one_transaction
            if committed and event.kind == "migration" and event.phase == "done" and not event.backwards:
                self.state.applied.append(event.label)
                self._write()
            report(event)

        return tracked

    def done(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _write(self) -> None:
        metadata.write_atomic(self.path, json.dumps(asdict(self.state), indent=2) + "\n")


def unfinished(kit: Kit, applied_now: set[tuple[str, str]]) -> RunState | None:
    """The unfinished run of this database, if it left anything applied; a resolved one is dropped."""
    path = path_for(kit)
    try:
        state = RunState(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    left = [label for label in state.planned if tuple(label.split(".", 1)) in applied_now]
    if not left or (state.one_transaction and len(left) == len(state.planned)):
        # Nothing of it is applied, or (one transaction) all of it committed: a known state.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    state.applied = left
    return state
