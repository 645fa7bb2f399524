"""Roll a database back to a backup, all or nothing, keeping the state it replaces.

Plan first, act second: `restore.plan` resolves and validates the backup and decides how to
restore (read-only); `rollback_to()` acts on a plan. Two ways, chosen by what the role may do:

- swap (the role may create databases and owns the target, or is a superuser): restore into
  a new database `<db>__restore_<TS>`, verify it against the metadata and ANALYZE it, then
  block logins to the target, end its sessions and swap the names; the old database is kept
  as `<db>__pre_rollback_<TS>`. Any failure before the swap drops the new database and leaves
  the target untouched; a failing swap puts the names back.
- in place (no CREATEDB, or --in-place): a pre-rollback safety backup, then one transaction
  that drops what the role owns and restores the archive, checking the row counts and
  migrations before it commits (see restore.inplace).

Before either, under the deploy lock: a target left refusing connections by a swap killed
outright is allowed connections again (`reallow_connections`), and restore copies left by a
killed rollback are dropped.

Nothing here prompts; the CLI asks for confirmation. The core reports steps as events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from migration_tools.core import signals
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.core.events import Report, quiet, step
from migration_tools.core.runtime import Kit
from migration_tools.pg import databases, deploy_lock, sessions
from migration_tools.pg.idents import ident
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


def reallow_connections(kit: Kit, report: Report = quiet, *, dry_run: bool = False) -> bool:
    """Let the target accept connections again when an interrupted swap left it refusing them.

    A swap blocks logins before it renames; a rollback killed outright (SIGKILL) in between leaves
    the live database with datallowconn = false. Call this while holding the deploy lock: then
    no rollback is running, so nothing the kit does needs it blocked. Says so; True when it found
    the database refusing connections (for a dry run, it only says it would re-allow them).
    """
    target = kit.params.dbname
    with databases.maintenance(kit.params, "rollback") as conn:
        if not databases.exists(conn, target) or databases.database_info(conn, target).allow_connections:
            return False
        found = (f"Database '{target}' refuses connections (datallowconn = false), as a rollback killed "
                 "during its swap leaves it, and no rollback is running")
        if dry_run:
            report(step(f"{found}: the rollback would allow connections again first"))
            return True
        try:
            databases.set_allow_connections(conn, target, True)
        except psycopg.Error as exc:
            raise OperationFailed(
                "db-refuses-connections",
                f"{found}, and role '{sessions.role(conn)}' may not allow them again: "
                f"{str(exc).strip().splitlines()[0]}; nothing was changed",
                f"as its owner or a superuser run ALTER DATABASE {ident(target)} ALLOW_CONNECTIONS true, "
                "then run the rollback again",
            ) from exc
    report(step(f"{found}: allowed connections again"))
    kit.log.warning("database %s refused connections (left so by an interrupted swap): allowed them again",
                    target)
    return True


def _drop_stale_copies(kit: Kit, target: str, say: Callable[[str], None]) -> None:
    """Restore copies a killed rollback left (the deploy lock is held: none is being restored now)."""
    with databases.maintenance(kit.params, "rollback") as conn:
        for stale in databases.stale_copies(conn, target):
            say(f"Dropping '{stale}', left behind by an interrupted rollback")
            try:
                databases.drop(conn, stale)
            except psycopg.Error as exc:
                kit.log.warning("could not drop %s, left behind by an interrupted rollback: %s", stale, exc)
                say(f"  could not drop it ({str(exc).strip().splitlines()[0]}); going on")
                continue
            kit.log.warning("dropped %s, left behind by an interrupted rollback", stale)


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

    def say(text: str) -> None:
        report(step(text))

    with _maybe_lock(kit, take_lock):
        if prepared is None:
            reallow_connections(kit, report)
        the_plan = prepared or plan(kit, Path(dump_path))
        kit.log.info(
            "rollback start file=%s database=%s method=%s reason=%s",
            the_plan.dump.name, the_plan.database, the_plan.method, reason,
        )
        try:
            _drop_stale_copies(kit, the_plan.database, say)
            if the_plan.method == "swap":
                outcome = swap.run(kit, the_plan, say)
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
            elif databases.exists(conn, the_plan.new_db):
                state += (f"; its unfinished copy '{the_plan.new_db}' is left: the next rollback of "
                          f"'{the_plan.database}' drops it")
    kit.log.error("rollback interrupted by %s: %s", signame, state)
    return OperationFailed(
        "rollback-interrupted",
        f"the rollback was interrupted by {signame}; {state}",
        "run the rollback again when ready (python rollback_manager.py list-backups)",
    )
