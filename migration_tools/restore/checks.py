"""What a rollback finds out before it acts: read-only checks, each one answer for the plan.

- `writes_by_others` / `writes_since_backup`: the rows written to the target since the backup
  (the statistics' write counters now against those the backup recorded), which a rollback
  discards and which stop migrate's undo from restoring the backup.
- `refuse_swap_problems`: a swap that could not finish is refused before anything is created:
  a database property the role could not give the new database (pg.database_shape.uncopyable),
  or sessions on the target the role may not end (pg.sessions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from migration_tools.backup.metadata import BackupMeta
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.pg import catalog, database_shape, db, sessions

WRITES_PREFIX = "Rows written since the backup, which this rollback discards: "
MAX_TABLES_LISTED = 10
IN_PLACE_OFFER = (
    "restore in place instead with --in-place (the database, its settings and privileges stay as they are)"
)


def writes_since_backup(params: ConnParams, dump: Path, meta: BackupMeta, *, accepting: bool) -> str:
    """'none since the backup', 'schema.table (N row(s)), ...' or 'cannot be told: why'.

    Counters another session has not flushed yet (PostgreSQL flushes them at most once a second,
    and within 10 s for a session that went idle) are not counted.
    """
    if not accepting:
        return f"cannot be told: database '{params.dbname}' refuses connections"
    found, why = writes_by_others(params, dump.name, meta)
    if why:
        return f"cannot be told: {why}"
    if not found:
        return "none since the backup"
    tables = sorted(found.items())
    text = ", ".join(f"{table} ({count:,} row(s))" for table, count in tables[:MAX_TABLES_LISTED])
    more = len(tables) - MAX_TABLES_LISTED
    return text + (f", and {more} more table(s)" if more > 0 else "")


def writes_by_others(
    params: ConnParams, dump_name: str, meta: BackupMeta, own: dict[str, int] | None = None
) -> tuple[dict[str, int], str]:
    """Rows written per table since the backup, minus `own` (a run's own writes); or, with an
    empty result, why that cannot be told. The one comparison the rollback plan and migrate's undo
    both make."""
    if not meta.write_counters:
        return {}, f"{dump_name} records no write counters"
    try:
        with db.connect(params, purpose="writes since the backup") as conn:
            now = catalog.write_counters(conn)
    except KitError as exc:
        return {}, exc.message
    except psycopg.Error as exc:
        return {}, str(exc).strip().splitlines()[0] if str(exc).strip() else "the query failed"
    found = catalog.writes_since(meta.write_counters, now, own or {})
    if found is None:
        return {}, "the statistics were reset since the backup"
    return found, ""


def refuse_swap_problems(conn: psycopg.Connection[Any], target: str) -> None:
    """Raise OperationFailed (nothing changed) when a swap of `target` could not finish as this role.

    `conn` is an autocommit connection to the maintenance database; the role may swap `target`.
    """
    problems = database_shape.uncopyable(conn, target)
    if problems:
        (what, why), more = problems[0], len(problems) - 1
        also = f" (and {more} more propert{'y' if more == 1 else 'ies'})" if more else ""
        raise OperationFailed(
            "copy-property",
            f"cannot give the new database the {what} of '{target}' as this role: {why}{also}; "
            "nothing was changed",
            f"{IN_PLACE_OFFER}, run the rollback as a role that may set it (a superuser), or remove the "
            f"{what} from '{target}'",
        )
    stuck = sessions.unendable(conn, target)
    if stuck:
        raise sessions.not_endable(
            sessions.role(conn), target, stuck, "a swap ends every session, so nothing was changed",
            "run the rollback again (or restore in place with --in-place)",
        )
