"""Rollback by swap: restore into a new database, verify it, then swap names with the target.

The target is not touched until the restored copy has been verified; any failure before the
swap drops the copy (or, when the server cannot be reached to drop it, says it is left for the
next rollback to drop). The old database is kept, renamed `<db>__pre_rollback_<TS>`.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import make_conninfo

from migration_tools.core import signals
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError, OperationFailed, RolledBack
from migration_tools.core.redact import redact
from migration_tools.pg import database_shape, databases, db, sessions, tools
from migration_tools.pg.idents import ident
from migration_tools.restore.verify import RestoreOutcome, analyze_and_compare

if TYPE_CHECKING:
    from migration_tools.core.runtime import Kit
    from migration_tools.restore.plan import RollbackPlan

RESTORE_JOBS = 2


def restore_args(dump: Path, dbname: str, *, keep_owner: bool, jobs: int = RESTORE_JOBS) -> list[str]:
    """pg_restore into an empty database, stopping at the first error.

    Ownership is kept only for a superuser (who can give objects to their original roles);
    any other role restores with --no-owner and owns what it restores.
    """
    args = ["--exit-on-error", f"--jobs={jobs}", f"--dbname={make_conninfo(dbname=dbname)}"]
    if not keep_owner:
        args.append("--no-owner")
    return [*args, str(dump)]


def restore_into(
    params: ConnParams, dbname: str, dump: Path, *, keep_owner: bool, jobs: int = RESTORE_JOBS
) -> None:
    args = restore_args(dump, dbname, keep_owner=keep_owner, jobs=jobs)
    proc = tools.run_pg_restore(args, params)
    if proc.returncode != 0:
        raise OperationFailed(
            "restore-failed",
            tools.tool_failure("pg_restore", proc.returncode, proc.stderr)
            + f" while restoring into '{dbname}'",
            "",
        )


_SHELL_SPECIAL = re.compile(r'["$`\\!]')


def _shell_arg(text: str) -> str:
    """Double quotes when that is safe (SQL in single quotes reads better), else shlex quoting."""
    return f'"{text}"' if not _SHELL_SPECIAL.search(text) else shlex.quote(text)


def undo_command(params: ConnParams, database: str, aside: str, stamp: str, maintenance_db: str) -> str:
    """A psql command, run from the maintenance database, that swaps the old database back."""
    rolled = databases.side_name(database, databases.UNDONE_TAG, stamp)
    literal = "'" + database.replace("'", "''") + "'"
    statements = [
        f"ALTER DATABASE {ident(database)} ALLOW_CONNECTIONS false",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {literal}",
        f"ALTER DATABASE {ident(database)} RENAME TO {ident(rolled)}",
        f"ALTER DATABASE {ident(aside)} RENAME TO {ident(database)}",
    ]
    head = ["psql", "-h", params.host, "-p", str(params.port), "-U", params.user, "-d", maintenance_db,
            "-v", "ON_ERROR_STOP=1"]
    return " ".join([*(shlex.quote(a) for a in head), *(f"-c {_shell_arg(s)}" for s in statements)])


def _unused_names(conn: psycopg.Connection[Any], plan: RollbackPlan) -> RollbackPlan:
    """The plan, with a fresh stamp in the rare case its side names are taken already."""
    while any(databases.exists(conn, name) for name in (plan.new_db, plan.aside_db)):
        plan = dataclasses.replace(plan, stamp=databases.new_stamp())
    return plan


def run(kit: Kit, plan: RollbackPlan, say: Callable[[str], None]) -> RestoreOutcome:
    params = kit.params
    target = plan.database
    with databases.maintenance(params, "rollback") as conn:
        plan = _unused_names(conn, plan)
        maintenance_db = conn.info.dbname
        new, aside = plan.new_db, plan.aside_db
        info = databases.database_info(conn, target)
        stuck = sessions.unendable(conn, target)  # checked by the plan; sessions come and go
        if stuck:
            raise sessions.not_endable(sessions.role(conn), target, stuck,
                                       "a swap ends every session, so nothing was changed",
                                       "run the rollback again (or restore in place with --in-place)")
        say(f"Creating database '{new}' (template0, {info.encoding}, {info.collate})")
        database_shape.create_like(conn, new, target)
        kit.log.info("created database %s", new)
        touched = False
        try:
            say(f"Giving '{new}' the connection limit, privileges, settings and comment of '{target}'")
            database_shape.copy_properties(conn, new, target)
            jobs = kit.settings.backup_jobs  # MIGRATION_KIT["BACKUP_JOBS"], default RESTORE_JOBS
            say(f"Restoring {plan.dump.name} into '{new}' (pg_restore --jobs={jobs})")
            restore_into(params, new, plan.dump, keep_owner=plan.keep_owner, jobs=jobs)
            say(f"ANALYZE '{new}' and verify its row counts and applied migrations against the metadata")
            check = analyze_and_compare(params, new, plan.meta.row_counts, plan.meta.applied_migrations)
            if not check.ok:
                raise OperationFailed(
                    "restore-verify",
                    "the restored copy does not match the backup's metadata: "
                    + "; ".join(check.problems[:3]),
                    "",
                )
            new_oid = db.scalar(conn, "SELECT oid FROM pg_database WHERE datname = %s", (new,))
            say(f"Swapping: '{target}' -> '{aside}' (kept), '{new}' -> '{target}'")
            touched = True
            ended = databases.swap(conn, target, new, aside, allow_after=info.allow_connections)
        except BaseException as exc:
            left = _discard(kit, conn, new)
            raise _explain(exc, target, touched, new, left) from exc
        now_oid = db.scalar(conn, "SELECT oid FROM pg_database WHERE datname = %s", (target,))
        if now_oid != new_oid:  # PostgreSQL renames atomically; this only guards the kit's logic
            raise OperationFailed("swap-check", f"'{target}' is not the restored database after the swap", "")
    kit.log.info("swapped %s -> %s, %s -> %s; ended %d session(s)", target, aside, new, target, ended)
    return RestoreOutcome(
        snapshot=check.snapshot,
        kept=aside,
        undo=undo_command(params, target, aside, plan.stamp, maintenance_db),
        sessions_ended=ended,
    )


def _explain(exc: BaseException, target: str, touched: bool, new: str, left: str) -> BaseException:
    """The error to show: what failed, and only what is true of the target and the new database.

    `left` is '' when the new database `new` was dropped, else why it could not be.
    """
    if not isinstance(exc, (KitError, psycopg.Error)):
        return exc  # KeyboardInterrupt and the like: re-raise as is (restore.run says where it stopped)
    cause = exc.__cause__ if isinstance(exc, databases.SwapNotUndone) else exc
    error_id = cause.error_id if isinstance(cause, KitError) else "rollback-sql"
    what = (cause.message if isinstance(cause, KitError) else
            f"interrupted by {signals.describe(cause)}" if isinstance(cause, KeyboardInterrupt) else
            _first_line(cause) if cause is not None else "the swap failed")
    hint = (cause.hint if isinstance(cause, KitError) else "") or "fix the cause, then run the rollback again"
    copy = (" (the new database was dropped)" if not left else
            f"; the new database '{new}' could not be dropped ({left}) and is left: the next rollback of "
            f"'{target}' drops it")
    if isinstance(exc, databases.SwapNotUndone):
        return OperationFailed(exc.error_id, f"{what}; the swap failed and {exc.message}{copy}",
                               "repair it as said, then run the rollback again")
    if touched:
        return RolledBack(error_id, f"{what}; the swap was undone: database '{target}' is as it was{copy}",
                          hint)
    return OperationFailed(error_id, f"{what}; database '{target}' is unchanged{copy}", hint)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def _discard(kit: Kit, conn: psycopg.Connection[Any], name: str) -> str:
    """Drop the half-built copy: '' when it is gone, else why not (logged; never hides the first error)."""
    try:
        databases.drop(conn, name)
        kit.log.info("dropped database %s", name)
        return ""
    except psycopg.Error as exc:
        kit.log.error("could not drop database %s: %s", name, exc)
        return _first_line(exc)
