"""What the catalog of the database being migrated says about the tables a release touches.

One connection, three queries: the server version, each named relation's table (an index
resolves to its table) with `pg_class.reltuples` and `pg_total_relation_size`, and those
tables' columns (type, NOT NULL, default). Names are resolved as the migration's session
would resolve them (`to_regclass` through the search_path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from migration_tools.core.djangoenv import ConnParams
from migration_tools.pg import db

TABLES_SQL = """
SELECT n.schema, n.name, t.oid, t.oid::regclass::text, t.reltuples::bigint, pg_total_relation_size(t.oid),
       c.relkind IN ('i', 'I')
FROM unnest(%s::text[], %s::text[]) AS n(name, schema)
JOIN pg_class c ON c.oid = to_regclass(
    CASE WHEN n.schema = '' THEN format('%%I', n.name) ELSE format('%%I.%%I', n.schema, n.name) END)
LEFT JOIN pg_index i ON i.indexrelid = c.oid
JOIN pg_class t ON t.oid = coalesce(i.indrelid, c.oid)
"""

COLUMNS_SQL = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
FROM pg_attribute a
WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
"""


@dataclass(frozen=True)
class TableInfo:
    name: str  # the table as the catalog names it
    rows: int | None  # reltuples; None when the table was never analysed (-1)
    bytes: int  # pg_total_relation_size: heap, indexes and TOAST
    via_index: bool = False  # the statement named one of its indexes


@dataclass(frozen=True)
class ColumnInfo:
    type: str
    not_null: bool
    has_default: bool


@dataclass
class Catalog:
    """The catalog's answers; empty (and `online` False) for --offline."""

    online: bool = False
    version: int | None = None
    tables: dict[str, TableInfo] = field(default_factory=dict)  # keyed by the name as written
    columns: dict[tuple[str, str], ColumnInfo] = field(default_factory=dict)  # (name as written, column)
    lock_timeout: str = ""  # the migration session's lock_timeout ("0": none)

    def table(self, name: str) -> TableInfo | None:
        return self.tables.get(name) or self.tables.get(name.split(".")[-1])


def split_name(name: str) -> tuple[str, str]:
    schema, _, rel = name.rpartition(".")
    return rel, schema


def connect(params: ConnParams) -> psycopg.Connection[Any]:
    return db.connect(params, purpose="lint")


def version(conn: psycopg.Connection[Any]) -> int:
    return db.server_version_num(conn)


def read(conn: psycopg.Connection[Any], names: set[str], server_version: int) -> Catalog:
    """The tables behind `names` (an index stands for its table) and their columns."""
    wanted = sorted(n for n in names if n)
    catalog = Catalog(online=True, version=server_version)
    if wanted:
        pairs = [split_name(n) for n in wanted]
        rows = conn.execute(TABLES_SQL, ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
        by_oid: dict[int, list[str]] = {}
        for schema, name, oid, table, tuples, size, is_index in rows:
            key = f"{schema}.{name}" if schema else name
            rows_known = None if tuples < 0 else int(tuples)
            catalog.tables[key] = TableInfo(table, rows_known, int(size), bool(is_index))
            by_oid.setdefault(oid, []).append(key)
        if by_oid:
            columns = conn.execute(COLUMNS_SQL, (list(by_oid),)).fetchall()
            for oid, column, type_, not_null, has_default in columns:
                for key in by_oid[oid]:
                    catalog.columns[(key, column)] = ColumnInfo(type_, not_null, has_default)
    return catalog
