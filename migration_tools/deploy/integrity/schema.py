"""The database's side of the models: which tables and columns exist, which unique indexes enforce
what, constraints left NOT VALID, and the planner's row estimates. Catalog reads only, each one query.

Tables are resolved as PostgreSQL resolves Django's own SQL (`to_regclass` of the quoted
db_table, so the search_path and `'schema"."table'` names work), and every later query names the
table by the schema and name found here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import models

from migration_tools.deploy.integrity.labels import quoted_db_table
from migration_tools.deploy.integrity.report import MissingColumn, MissingTable, NotValidConstraint
from migration_tools.pg.catalog import USER_SCHEMA_FILTER

RESOLVE_SQL = (
    "SELECT t.name, c.oid, n.nspname, c.relname, c.relpages, c.reltuples::bigint, "
    "ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
    "AND NOT a.attisdropped), c.relallvisible, "
    # the first column of each valid, whole-table btree index: what an ordered index-only scan reads
    "ARRAY(SELECT a.attname::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
    "JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree' "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
    "WHERE i.indrelid = c.oid AND i.indisvalid AND i.indisready AND i.indpred IS NULL) "
    "FROM unnest(%s::text[]) AS t(name) "
    "LEFT JOIN pg_class c ON c.oid = to_regclass(t.name) LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
)
UNIQUE_INDEXES_SQL = (
    "SELECT i.indrelid, i.indisvalid AND i.indisready, i.indpred IS NULL AND i.indexprs IS NULL, "
    "ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.n <= i.indnkeyatts), "
    "c.relname "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indisunique AND i.indrelid = ANY(%s)"
)
NOT_VALID_SQL = (
    "SELECT con.conrelid::regclass::text, con.conname, con.contype FROM pg_constraint con "
    "JOIN pg_namespace n ON n.oid = con.connamespace "
    f"WHERE NOT con.convalidated AND {USER_SCHEMA_FILTER} ORDER BY 1, 2"
)
CONSTRAINT_KINDS = {"f": "foreign key", "c": "check", "u": "unique", "p": "primary key", "x": "exclusion"}


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    pages: int
    estimate: int  # pg_class.reltuples: -1 when never analysed
    columns: frozenset[str]
    all_visible: int = 0  # pg_class.relallvisible: pages an index-only scan need not visit
    index_leads: frozenset[str] = frozenset()  # first columns of valid whole-table btree indexes

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    def ordered_scan(self, column: str) -> bool:
        """An index gives `column` in order, and most pages are all-visible (no heap visits)."""
        return column in self.index_leads and self.all_visible * 2 >= self.pages


@dataclass(frozen=True)
class UniqueIndex:
    valid: bool
    plain: bool  # neither partial nor on expressions
    columns: frozenset[str]
    name: str


def resolve(conn: psycopg.Connection[Any], db_tables: Iterable[str]) -> dict[str, Table | None]:
    """Each Django db_table -> the table it names now, or None when there is none."""
    names = sorted({t for t in db_tables if t})
    quoted = {quoted_db_table(n): n for n in names}
    found: dict[str, Table | None] = dict.fromkeys(names)
    for name, oid, schema, relname, pages, estimate, columns, visible, leads in conn.execute(
            RESOLVE_SQL, (list(quoted),)):
        if oid is not None:
            found[quoted[name]] = Table(int(oid), str(schema), str(relname), int(pages), int(estimate),
                                        frozenset(str(c) for c in columns), int(visible),
                                        frozenset(str(c) for c in leads))
    return found


def missing(
    models_: Sequence[tuple[str, type[models.Model]]], tables: dict[str, Table | None]
) -> tuple[list[MissingTable], list[MissingColumn]]:
    """Tables and columns the applied migrations define but the database lacks.

    `models_` are (label, model) pairs; an auto-created many-to-many table is labelled by the
    field that owns it (`places.Restaurant.suppliers`).
    """
    lost_tables, lost_columns = [], []
    for label, model in models_:
        table = tables.get(model._meta.db_table)
        if table is None:
            lost_tables.append(MissingTable(label, model._meta.db_table))
            continue
        for f in model._meta.local_concrete_fields:
            if f.column and f.column not in table.columns:
                lost_columns.append(MissingColumn(label, f.name, table.key, f.column))
    return lost_tables, lost_columns


def unique_indexes(conn: psycopg.Connection[Any], oids: Iterable[int]) -> dict[int, list[UniqueIndex]]:
    """The unique indexes (primary keys and unique constraints included) of each table."""
    found: dict[int, list[UniqueIndex]] = {}
    for relid, valid, plain, columns, name in conn.execute(UNIQUE_INDEXES_SQL, (sorted(set(oids)),)):
        found.setdefault(int(relid), []).append(
            UniqueIndex(bool(valid), bool(plain), frozenset(str(c) for c in columns), str(name))
        )
    return found


def enforced(indexes: Sequence[UniqueIndex], columns: Iterable[str], name: str = "") -> bool:
    """Does a valid unique index make these columns unique? One on a subset of them does too.

    A partial or expression index enforces only the declaration it was built for (same name).
    """
    wanted = frozenset(columns)
    return any(
        index.valid and ((index.plain and index.columns <= wanted) or (name and index.name == name))
        for index in indexes
    )


def not_valid_constraints(conn: psycopg.Connection[Any]) -> list[NotValidConstraint]:
    """Constraints added NOT VALID and never validated: rows before them were never checked."""
    return [
        NotValidConstraint(str(table), str(name), CONSTRAINT_KINDS.get(str(kind), str(kind)))
        for table, name, kind in conn.execute(NOT_VALID_SQL).fetchall()
    ]


USER_TABLES_SQL = (
    "SELECT c.oid, n.nspname, c.relname, c.relpages, c.reltuples::bigint FROM pg_class c "
    f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMA_FILTER}"
)


def user_tables(conn: psycopg.Connection[Any]) -> dict[str, Table]:
    """Every user table, keyed 'schema.table' as backup metadata keys them (columns not read)."""
    found = {}
    for oid, schema, relname, pages, estimate in conn.execute(USER_TABLES_SQL).fetchall():
        table = Table(int(oid), str(schema), str(relname), int(pages), int(estimate), frozenset())
        found[table.key] = table
    return found
