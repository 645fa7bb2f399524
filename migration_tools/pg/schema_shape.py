"""The user schema as text lines (tables, columns, indexes, constraints), to tell whether two
moments of one database have the same schema. What an undo is checked against."""

from __future__ import annotations

from typing import Any

import psycopg

_USER = "NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"

SHAPE_SQL = f"""
SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname {_USER} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'column ' || c.oid::regclass::text || '.' || quote_ident(a.attname) || ' '
       || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname {_USER} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname {_USER}
UNION ALL
SELECT 'constraint ' || co.conrelid::regclass::text || ' ' || quote_ident(co.conname) || ' '
       || pg_get_constraintdef(co.oid) || CASE WHEN co.convalidated THEN '' ELSE ' NOT VALID' END
  FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
 WHERE n.nspname {_USER} AND co.conrelid <> 0
"""


def schema_shape(conn: psycopg.Connection[Any]) -> frozenset[str]:
    return frozenset(row[0] for row in conn.execute(SHAPE_SQL).fetchall())


def shape_differences(before: frozenset[str], after: frozenset[str], limit: int = 3) -> list[str]:
    """What differs, as 'missing: ...' and 'new: ...' lines, at most `limit` of them."""
    lines = [f"missing: {line}" for line in sorted(before - after)]
    lines += [f"new: {line}" for line in sorted(after - before)]
    return lines[:limit] + ([f"and {len(lines) - limit} more"] if len(lines) > limit else [])
