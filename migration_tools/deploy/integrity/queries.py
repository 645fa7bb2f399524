"""The SQL of each check: one set-based statement per relation, key or table; rows never go to Python.

Each statement returns one row: a number, and for findings up to five example keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from migration_tools.deploy.integrity.labels import EXAMPLES
from migration_tools.deploy.integrity.schema import Table

Statement = tuple[sql.Composable, tuple[object, ...]]


def ident(table: Table) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


def count(table: Table) -> Statement:
    return sql.SQL("SELECT count(*) FROM {}").format(ident(table)), ()


def _found_with_examples(rows: sql.Composable) -> sql.Composable:
    """count(*) of `rows` (a query with one column `k`) and its first five `k` in order."""
    return sql.SQL(
        "WITH o AS MATERIALIZED ({rows}) "
        "SELECT (SELECT count(*) FROM o), ARRAY(SELECT k FROM o ORDER BY k LIMIT {n})"
    ).format(rows=rows, n=sql.Literal(EXAMPLES))


def orphans(child: Table, column: str, key: str, parent: Table, parent_column: str) -> Statement:
    """Rows whose `column` is set and matches no row of `parent` (an anti-join).

    The anti-join reads only the two key columns, so with an index on each it can be a merge of two
    index-only scans (see merge_join_settings); the example keys are read only for orphans found.
    """
    names = {"key": sql.Identifier(key or column), "child": ident(child), "col": sql.Identifier(column),
             "parent": ident(parent), "pcol": sql.Identifier(parent_column), "n": sql.Literal(EXAMPLES)}
    query = sql.SQL(
        "WITH o AS MATERIALIZED (SELECT c.{col} AS v FROM {child} c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM {parent} p WHERE p.{pcol} = c.{col})) "
        "SELECT (SELECT count(*) FROM o), "
        "ARRAY(SELECT c.{key} FROM {child} c WHERE c.{col} IN (SELECT v FROM o) ORDER BY 1 LIMIT {n})"
    ).format(**names)
    return query, ()


def merge_join_settings(child: Table, column: str, parent: Table, parent_column: str) -> tuple[str, ...]:
    """Planner settings for a relation's anti-join. With both key columns read in order from an index
    and most pages all-visible, a merge of two index-only scans needs no memory and no temporary
    files; the planner, which prefers a hash join, spills that to disk above work_mem (on the demo
    at 8 million rows: 210 MB written and read back, and about twice the time). Otherwise the
    planner chooses, as always."""
    if child.ordered_scan(column) and parent.ordered_scan(parent_column):
        return ("enable_hashjoin",)
    return ()


def generic_orphans(
    child: Table, ct_column: str, id_column: str, key: str, content_type: int,
    target: Table | None, target_column: str, direct: bool,
) -> Statement:
    """Rows of one content type whose object id matches no row of that type's table.

    Without a table (`target` None: the content type's model is gone) every such row is an orphan.
    An object id of another type than the target's key (text against integer) compares as text.
    """
    where = sql.SQL("c.{ct} = %s AND c.{oid} IS NOT NULL").format(
        ct=sql.Identifier(ct_column), oid=sql.Identifier(id_column))
    if target is not None:
        match = "p.{pcol} = c.{oid}" if direct else "p.{pcol}::text = c.{oid}::text"
        where = sql.SQL("{where} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match})").format(
            where=where, parent=ident(target),
            match=sql.SQL(match).format(pcol=sql.Identifier(target_column), oid=sql.Identifier(id_column)),
        )
    rows = sql.SQL("SELECT c.{key} AS k FROM {child} c WHERE {where}").format(
        key=sql.Identifier(key or id_column), child=ident(child), where=where)
    return _found_with_examples(rows), (content_type,)


def content_types_used(child: Table, ct_column: str, ct_table: Table) -> Statement:
    """The content types a generic relation's rows use: (id, app_label, model) each."""
    query = sql.SQL(
        "SELECT d.ct, t.app_label, t.model FROM (SELECT DISTINCT c.{col} AS ct FROM {child} c "
        "WHERE c.{col} IS NOT NULL) d JOIN {cts} t ON t.id = d.ct ORDER BY 1"
    ).format(col=sql.Identifier(ct_column), child=ident(child), cts=ident(ct_table))
    return query, ()


def normalized(column: str) -> sql.Composable:
    """A key column compared case- and whitespace-insensitively."""
    return sql.SQL("lower(regexp_replace({}::text, '\\s+', '', 'g'))").format(sql.Identifier(column))


def duplicates(
    table: Table, columns: Sequence[str], key: str, *, loose: Sequence[str] = (),
    skip_nulls: bool = False, key_is_integer: bool = True,
) -> Statement:
    """Rows beyond the first of each group sharing `columns`, and up to five such rows' keys.

    `loose` columns compare normalized; with `skip_nulls` a NULL in any column makes a row unique,
    as a unique index has it. The example key of a group is its largest (a later copy).
    """
    exprs = [normalized(c) if c in loose else sql.Identifier(c) for c in columns]
    key_expr = sql.Identifier(key) if key_is_integer else sql.SQL("{}::text").format(sql.Identifier(key))
    where = sql.SQL("")
    if skip_nulls:
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(
            sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in columns)
    query = sql.SQL(
        "WITH g AS MATERIALIZED (SELECT count(*) AS n, max({key}) AS k FROM {t}{where} GROUP BY {cols} "
        "HAVING count(*) > 1) "
        "SELECT (SELECT coalesce(sum(n - 1), 0) FROM g), ARRAY(SELECT k FROM g ORDER BY k LIMIT {n})"
    ).format(key=key_expr, t=ident(table), where=where, cols=sql.SQL(", ").join(exprs),
             n=sql.Literal(EXAMPLES))
    return query, ()
