"""Catalog queries the kit runs, each written once: user tables, row counts, applied migrations.

A database's state, as the kit compares it (after a restore, a test restore, an undo), is a
`Snapshot`: exact row counts of every user table and Django's applied migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.pg.db import scalar

MIGRATIONS_TABLE = "django_migrations"

# Schemas that hold no user data; the same filter everywhere a "user table" is meant.
USER_SCHEMA_FILTER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)
USER_TABLES_SQL = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMA_FILTER}"
)
DATABASE_SIZE_SQL = "SELECT pg_database_size(current_database())"
CLUSTER_DATABASES_SQL = "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"
INVALID_INDEXES_SQL = "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE NOT i.indisvalid ORDER BY 1"


def database_size(conn: psycopg.Connection[Any]) -> int:
    return int(scalar(conn, DATABASE_SIZE_SQL))


def user_tables(conn: psycopg.Connection[Any], *, largest_first: bool = False) -> list[tuple[str, str]]:
    """(schema, table) of every ordinary or partitioned table outside the system schemas."""
    order = "pg_total_relation_size(c.oid) DESC, 1, 2" if largest_first else "1, 2"
    rows = conn.execute(sql.SQL(USER_TABLES_SQL + " ORDER BY " + order)).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def table_key(schema: str, table: str) -> str:
    return f"{schema}.{table}"


def count_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    return int(scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))))


def exact_row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """count(*) of every user table, keyed 'schema.table'."""
    return {table_key(s, t): count_rows(conn, s, t) for s, t in user_tables(conn)}


def applied_migrations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Rows of Django's migration table, sorted; empty when the table does not exist."""
    if scalar(conn, "SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)) is None:
        return []
    query = sql.SQL("SELECT app, name FROM {} ORDER BY app, name").format(sql.Identifier(MIGRATIONS_TABLE))
    return [(str(a), str(n)) for a, n in conn.execute(query).fetchall()]


def invalid_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Indexes left invalid, e.g. by a failed CREATE INDEX CONCURRENTLY."""
    return [str(r[0]) for r in conn.execute(INVALID_INDEXES_SQL).fetchall()]


@dataclass(frozen=True)
class Snapshot:
    """What the kit compares of a database: row counts per user table and applied migrations."""

    row_counts: dict[str, int]
    applied: list[tuple[str, str]]

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    return Snapshot(exact_row_counts(conn), applied_migrations(conn))


def count_differences(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    """How `found` differs from `expected` (both 'schema.table' -> rows), readable, in table order."""
    problems = []
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"tables missing: {', '.join(missing[:5])}")
    if extra:
        problems.append(f"tables not in the backup: {', '.join(extra[:5])}")
    for table in sorted(set(expected) & set(found)):
        if found[table] != expected[table]:
            problems.append(f"{table} has {found[table]:,} rows, the backup {expected[table]:,}")
    return problems


def migration_differences(expected: list[tuple[str, str]], found: list[tuple[str, str]]) -> str:
    """'' when the applied migrations are the same, else what is missing and what is extra."""
    want, have = sorted(expected), sorted(found)
    if want == have:
        return ""
    lost = sorted(set(want) - set(have))
    more = sorted(set(have) - set(want))
    detail = []
    if lost:
        detail.append("missing " + ", ".join(f"{a}.{n}" for a, n in lost[:3]))
    if more:
        detail.append("extra " + ", ".join(f"{a}.{n}" for a, n in more[:3]))
    return f"applied migrations differ from the backup's ({'; '.join(detail)})"


def differences(
    snap: Snapshot, expected_counts: dict[str, int], expected_applied: list[tuple[str, str]]
) -> list[str]:
    """Every way `snap` differs from the expected state; empty when it is the same."""
    problems = count_differences(expected_counts, snap.row_counts)
    applied = migration_differences(expected_applied, snap.applied)
    return [*problems, applied] if applied else problems


# Rows inserted, updated and deleted per user table since the statistics were last reset. The
# counters are cumulative across sessions and survive a rollback of the writer's transaction only
# as far as PostgreSQL counts aborted writes too, so a difference means write activity, never less.
WRITE_COUNTERS_SQL = (
    "SELECT schemaname, relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
)
OWN_WRITES_SQL = (
    "SELECT schemaname, relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
    "WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
)
# Other sessions flush their counters at most once a second (PGSTAT_MIN_INTERVAL).
STATS_FLUSH_DELAY_S = 1.2


def write_counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Cumulative rows written per user table, keyed 'schema.table', as the statistics say now."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return {table_key(s, t): int(n) for s, t, n in conn.execute(WRITE_COUNTERS_SQL).fetchall()}


def own_writes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows this connection's open transaction wrote per table (pg_stat_xact_user_tables)."""
    return {table_key(s, t): int(n) for s, t, n in conn.execute(OWN_WRITES_SQL).fetchall()}


def writes_since(before: dict[str, int], now: dict[str, int], own: dict[str, int]) -> dict[str, int] | None:
    """Rows others wrote per table between two `write_counters` readings, minus `own`.

    None when the counters went backwards (statistics reset, crash): then nobody can tell. Django's
    migration table is left out: only a migration writes it, and the deploy lock allows one.
    """
    found: dict[str, int] = {}
    for table, count in now.items():
        if table.rpartition(".")[2] == MIGRATIONS_TABLE:
            continue
        start = before.get(table, 0)
        if count < start:
            return None
        extra = count - start - own.get(table, 0)
        if extra > 0:
            found[table] = extra
    return found
