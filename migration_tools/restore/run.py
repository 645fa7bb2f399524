"""Roll a database back to a backup, all or nothing, keeping the state it replaces.

Plan first, act second: `restore.plan` resolves and validates the backup and decides how to
restore (read-only); `rollback_to()` acts on a plan. Two ways, chosen by what the role may do:

- swap (the role may create databases and owns the target, or is a superuser): restore into
  a new database `<db>__restore_<TS>`, verify it against the metadata and ANALYZE it, then
  block logins to the target, end its sessions and swap the names; the old database is kept
  as `<db>__pre_rollback_<TS>`. Any failure before the swap drops the new database and leaves
  the target untouched; a failing swap puts the names back.
- in place (no CREATEDB): a pre-rollback safety backup, then one transaction that drops
  what the role owns and restores the archive, checking the row counts and migrations
  before it commits (see restore.inplace).

Nothing here prompts; the CLI asks for confirmation. The core reports steps as events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from migration_tools.core import signals
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.core.events import Report, quiet, step
from migration_tools.core.runtime import Kit
from migration_tools.pg import databases, deploy_lock
from migration_tools.restore import inplace, swap
from migration_tools.restore.plan import RollbackPlan, plan


@dataclass(frozen=True)
class RollbackResult:
    dump: Path
    database: str
    method: str
    reason: str
    kept: str  # the renamed old database, or the safety backup's file name
    undo: str  # the exact command that brings the replaced state back
    tables: int
    rows: int
    migrations: int
    sessions_ended: int
    seconds: float














@contextlib.contextmanager
def _maybe_lock(kit: Kit, take: bool) -> Iterator[None]:
    if not take:
        yield
        return
    with deploy_lock.hold(kit.params, "rollback"):
        yield


def rollback_to(
    kit: Kit,
    dump_path: Path,
    *,
    reason: str,
    take_lock: bool = True,
    report: Report = quiet,
    prepared: RollbackPlan | None = None,
) -> RollbackResult:
    """Replace the target database with the backup at dump_path; see the module docstring.

    Raises BadInput (nothing changed: invalid backup, wrong database), OperationFailed (the
    target was not touched) or RolledBack (the target was touched and put back).
    """
    started = time.monotonic()
    with _maybe_lock(kit, take_lock):
        the_plan = prepared or plan(kit, Path(dump_path))
        kit.log.info(
            "rollback start file=%s database=%s method=%s reason=%s",
            the_plan.dump.name, the_plan.database, the_plan.method, reason,
        )
        try:
            if the_plan.method == "swap":
                outcome = swap.run(kit, the_plan, lambda text: report(step(text)))
            else:
                outcome = inplace.run(kit, the_plan, report)
        except KitError as exc:
            kit.log.error(
                "rollback failed file=%s database=%s: %s [%s]",
                the_plan.dump.name, the_plan.database, exc.message, exc.error_id,
            )
            raise
        except KeyboardInterrupt as exc:
            raise _interrupted(kit, the_plan, signals.describe(exc)) from exc
    snap = outcome.snapshot
    result = RollbackResult(
        dump=the_plan.dump,
        database=the_plan.database,
        method=the_plan.method,
        reason=reason,
        kept=outcome.kept,
        undo=outcome.undo,
        tables=len(snap.row_counts),
        rows=snap.rows,
        migrations=len(snap.applied),
        sessions_ended=outcome.sessions_ended,
        seconds=time.monotonic() - started,
    )
    kit.log.info(
        "rollback done file=%s database=%s method=%s kept=%s rows=%d migrations=%d seconds=%.1f",
        result.dump.name, result.database, result.method, result.kept, result.rows,
        result.migrations, result.seconds,
    )
    return result


def _interrupted(kit: Kit, the_plan: RollbackPlan, signame: str) -> OperationFailed:
    """Where an interrupted rollback left the database: swapped (the kept database exists) or not."""
    state = f"database '{the_plan.database}' is as it was"
    if the_plan.method == "swap":
        with contextlib.suppress(KitError, psycopg.Error), \
                databases.maintenance(kit.params, "rollback") as conn:
            if databases.exists(conn, the_plan.aside_db):
                state = (f"the swap had completed: '{the_plan.database}' holds {the_plan.dump.name} and the "
                         f"replaced database is kept as '{the_plan.aside_db}'")
    kit.log.error("rollback interrupted by %s: %s", signame, state)
    return OperationFailed(
        "rollback-interrupted",
        f"the rollback was interrupted by {signame}; {state}",
        "run the rollback again when ready (python rollback_manager.py list-backups)",
    )
