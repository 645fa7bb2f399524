"""Rollback by swap: restore into a new database, verify it, then swap names with the target.

The target is not touched until the restored copy has been verified; any failure before the
swap drops the copy. The old database is kept, renamed `<db>__pre_rollback_<TS>`.
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

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError, OperationFailed, RolledBack
from migration_tools.core.redact import redact
from migration_tools.pg import database_shape, databases, db, tools
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


def restore_into(params: ConnParams, dbname: str, dump: Path, *, keep_owner: bool) -> None:
    proc = tools.run_tool("pg_restore", restore_args(dump, dbname, keep_owner=keep_owner), params)
    if proc.returncode != 0:
        raise OperationFailed(
            "restore-failed",
            tools.tool_failure("pg_restore", proc.returncode, proc.stderr)
            + f" while restoring into '{dbname}'",
            "",
        )


_SIMPLE_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_SHELL_SPECIAL = re.compile(r'["$`\\!]')
# Keywords PostgreSQL does not take unquoted as a database name: pg_get_keywords() with
# catcode <> 'U' on PostgreSQL 15, plus those PostgreSQL 16 and 17 added.
_KEYWORD_LIST = """
all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean
both case cast char character check coalesce collate collation column concurrently constraint create
cross current_catalog current_date current_role current_schema current_time current_timestamp
current_user dec decimal default deferrable desc distinct do else end except exists extract false
fetch float for foreign freeze from full grant greatest group grouping having ilike in initially
inner inout int integer intersect interval into is isnull join json json_array json_arrayagg
json_exists json_object json_objectagg json_query json_scalar json_serialize json_table json_value
lateral leading least left like limit localtime localtimestamp merge_action national natural nchar
none normalize not notnull null nullif numeric offset on only or order out outer overlaps overlay
placing position precision primary real references returning right row select session_user setof
similar smallint some substring symmetric system_user table tablesample then time timestamp to
trailing treat trim true union unique user using values varchar variadic verbose when where window
with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot
xmlserialize xmltable
"""
_KEYWORDS = frozenset(_KEYWORD_LIST.split())


def _ident(name: str) -> str:
    plain = _SIMPLE_IDENT.fullmatch(name) and name not in _KEYWORDS
    return name if plain else '"' + name.replace('"', '""') + '"'


def _shell_arg(text: str) -> str:
    """Double quotes when that is safe (SQL in single quotes reads better), else shlex quoting."""
    return f'"{text}"' if not _SHELL_SPECIAL.search(text) else shlex.quote(text)


def undo_command(params: ConnParams, database: str, aside: str, stamp: str, maintenance_db: str) -> str:
    """A psql command, run from the maintenance database, that swaps the old database back."""
    rolled = databases.side_name(database, databases.UNDONE_TAG, stamp)
    literal = "'" + database.replace("'", "''") + "'"
    statements = [
        f"ALTER DATABASE {_ident(database)} ALLOW_CONNECTIONS false",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {literal}",
        f"ALTER DATABASE {_ident(database)} RENAME TO {_ident(rolled)}",
        f"ALTER DATABASE {_ident(aside)} RENAME TO {_ident(database)}",
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
        for stale in databases.stale_copies(conn, target):
            say(f"Dropping '{stale}', left behind by an interrupted rollback")
            databases.drop(conn, stale)
            kit.log.warning("dropped %s, left behind by an interrupted rollback", stale)
        plan = _unused_names(conn, plan)
        maintenance_db = conn.info.dbname
        new, aside = plan.new_db, plan.aside_db
        info = databases.database_info(conn, target)
        say(f"Creating database '{new}' (template0, {info.encoding}, {info.collate})")
        database_shape.create_like(conn, new, target)
        kit.log.info("created database %s", new)
        touched = False
        try:
            say(f"Giving '{new}' the connection limit, privileges, settings and comment of '{target}'")
            database_shape.copy_properties(conn, new, target)
            say(f"Restoring {plan.dump.name} into '{new}' (pg_restore --jobs={RESTORE_JOBS})")
            restore_into(params, new, plan.dump, keep_owner=plan.keep_owner)
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
            _discard(kit, conn, new)
            raise _explain(exc, target, touched) from exc
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


def _explain(exc: BaseException, target: str, touched: bool) -> BaseException:
    """The error to show: what failed, and that the target is as it was."""
    if not isinstance(exc, (KitError, psycopg.Error)):
        return exc  # KeyboardInterrupt and the like: the copy is dropped, re-raise as is
    error_id = exc.error_id if isinstance(exc, KitError) else "rollback-sql"
    what = exc.message if isinstance(exc, KitError) else redact(str(exc).strip().splitlines()[0])
    hint = (exc.hint if isinstance(exc, KitError) else "") or "fix the cause, then run the rollback again"
    if touched:
        return RolledBack(
            error_id,
            f"{what}; the swap was undone: database '{target}' is as it was (the new database was dropped)",
            hint,
        )
    return OperationFailed(
        error_id, f"{what}; database '{target}' is unchanged (the new database was dropped)", hint
    )


def _discard(kit: Kit, conn: psycopg.Connection[Any], name: str) -> None:
    """Drop the half-built copy; a failure to drop is logged, never hides the first error."""
    try:
        databases.drop(conn, name)
        kit.log.info("dropped database %s", name)
    except psycopg.Error as exc:
        kit.log.error("could not drop database %s: %s", name, exc)
