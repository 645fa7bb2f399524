"""Compare a restored database with its backup's metadata: exact row counts and applied migrations."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from psycopg import sql

from migration_tools.core.djangoenv import ConnParams
from migration_tools.pg import catalog, db
from migration_tools.pg.catalog import Snapshot


@dataclass(frozen=True)
class Comparison:
    snapshot: Snapshot
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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
        tables = catalog.user_tables(conn, largest_first=True)
        applied = catalog.applied_migrations(conn)
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
                        counts[catalog.table_key(schema, table)] = catalog.count_rows(conn, schema, table)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    snap = Snapshot(dict(sorted(counts.items())), applied)
    return Comparison(snap, catalog.differences(snap, expected_counts, expected_applied))
