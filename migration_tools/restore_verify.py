"""Compare a restored database with its backup's metadata: exact row counts and applied migrations."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from migration_tools import db
from migration_tools.djangoenv import ConnParams

MIGRATIONS_TABLE = "django_migrations"


@dataclass(frozen=True)
class Snapshot:
    row_counts: dict[str, int]
    applied: list[tuple[str, str]]

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


@dataclass(frozen=True)
class Comparison:
    snapshot: Snapshot
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def applied_migrations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Rows of Django's migration table, sorted; empty when the table does not exist."""
    if db.scalar(conn, "SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)) is None:
        return []
    rows = conn.execute(f"SELECT app, name FROM {MIGRATIONS_TABLE} ORDER BY app, name").fetchall()
    return [(str(a), str(n)) for a, n in rows]


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    return Snapshot(db.exact_row_counts(conn), applied_migrations(conn))


def compare(
    conn: psycopg.Connection[Any],
    expected_counts: dict[str, int],
    expected_applied: list[tuple[str, str]],
) -> Comparison:
    """What differs between the database behind `conn` and the expected state."""
    return differences(snapshot(conn), expected_counts, expected_applied)


def differences(
    snap: Snapshot, expected_counts: dict[str, int], expected_applied: list[tuple[str, str]]
) -> Comparison:
    problems: list[str] = []
    missing = sorted(set(expected_counts) - set(snap.row_counts))
    extra = sorted(set(snap.row_counts) - set(expected_counts))
    if missing:
        problems.append(f"tables missing: {', '.join(missing[:5])}")
    if extra:
        problems.append(f"tables not in the backup: {', '.join(extra[:5])}")
    for table in sorted(set(expected_counts) & set(snap.row_counts)):
        if snap.row_counts[table] != expected_counts[table]:
            problems.append(
                f"{table} has {snap.row_counts[table]:,} rows, the backup {expected_counts[table]:,}"
            )
    want = sorted(expected_applied)
    if snap.applied != want:
        lost = sorted(set(want) - set(snap.applied))
        more = sorted(set(snap.applied) - set(want))
        detail = []
        if lost:
            detail.append("missing " + ", ".join(f"{a}.{n}" for a, n in lost[:3]))
        if more:
            detail.append("extra " + ", ".join(f"{a}.{n}" for a, n in more[:3]))
        problems.append(f"applied migrations differ from the backup's ({'; '.join(detail)})")
    return Comparison(snap, problems)


@dataclass(frozen=True)
class RestoreOutcome:
    """What one way of restoring did: the verified state, what it kept and how to undo it."""

    snapshot: Snapshot
    kept: str
    undo: str
    sessions_ended: int = 0


def analyze_and_compare(
    params: ConnParams,
    dbname: str,
    expected_counts: dict[str, int],
    expected_applied: list[tuple[str, str]],
    *,
    workers: int = 2,
) -> Comparison:
    """ANALYZE every user table and count its rows exactly, spread over `workers` connections.

    The biggest tables are analyzed first so the connections finish together; the counts come
    last. System catalogs are left to autovacuum.
    """
    with db.connect(params, dbname=dbname, purpose="rollback verify") as conn:
        tables = [
            (str(s), str(t))
            for s, t in conn.execute(
                """
                SELECT n.nspname, c.relname FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
                ORDER BY pg_total_relation_size(c.oid) DESC, 1, 2
                """
            ).fetchall()
        ]
        applied = applied_migrations(conn)
    tasks: queue.Queue[tuple[str, str, str]] = queue.Queue()
    for schema, table in tables:
        tasks.put(("ANALYZE", schema, table))
    for schema, table in tables:
        tasks.put(("count", schema, table))
    counts: dict[str, int] = {}
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with db.connect(params, dbname=dbname, purpose="rollback verify") as conn:
                while True:
                    try:
                        what, schema, table = tasks.get_nowait()
                    except queue.Empty:
                        return
                    name = sql.Identifier(schema, table)
                    if what == "ANALYZE":
                        conn.execute(sql.SQL("ANALYZE {}").format(name))
                    else:
                        query = sql.SQL("SELECT count(*) FROM {}").format(name)
                        counts[f"{schema}.{table}"] = int(db.scalar(conn, query))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return differences(Snapshot(dict(sorted(counts.items())), applied), expected_counts, expected_applied)
