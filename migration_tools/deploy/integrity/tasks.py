"""The statements one verify-data run needs, built from the models and what the catalog found.

Nothing is queried for a table or column that does not exist (the report names those instead),
and each table is counted once, whichever checks want its count.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from migration_tools.deploy.integrity import declared, queries, relations, runner, schema
from migration_tools.deploy.integrity.relations import Relation
from migration_tools.deploy.integrity.schema import Table


@dataclass
class Found:
    """What the catalog says: each db_table's table, unique indexes per table oid, every user table."""

    tables: dict[str, Table | None]
    uniques: dict[int, list[schema.UniqueIndex]]
    user_tables: dict[str, Table] = field(default_factory=dict)


def rows_key(table: Table) -> tuple[str, str]:
    return ("rows", table.key)


def dup_key(key: declared.NaturalKey) -> tuple[str, str, tuple[str, ...]]:
    return ("dup", key.label, key.fields)


class Checks:
    """Statements to run, keyed; counts the planner estimated instead (with --estimate)."""

    def __init__(self, found: Found, estimate_above: int | None) -> None:
        self.found, self.estimate_above = found, estimate_above
        self.tasks: list[runner.Task] = []
        self.keys: set[Hashable] = set()
        self.uniques: list[tuple[str, str, declared.Unique]] = []
        self.estimated: dict[str, int] = {}

    def table(self, db_table: str, *columns: str) -> Table | None:
        """The table, when it and every named column exist."""
        table = self.found.tables.get(db_table)
        return table if table is not None and all(c in table.columns for c in columns if c) else None

    def add(self, key: Hashable, table: Table, statement: queries.Statement, many: bool = False,
            planner_off: tuple[str, ...] = ()) -> None:
        if key in self.keys:
            return
        query, params = statement
        self.keys.add(key)
        self.tasks.append(runner.Task(key, table.key, table.pages, query, params, many, planner_off))

    def take(self) -> list[runner.Task]:
        """The statements added so far, to run now (the next phase adds its own)."""
        tasks, self.tasks = self.tasks, []
        return tasks

    def count(self, table: Table) -> None:
        if self.estimate_above is not None and table.estimate >= self.estimate_above:
            self.estimated[table.key] = table.estimate
        else:
            self.add(rows_key(table), table, queries.count(table))

    def relation(self, r: Relation) -> None:
        child = self.table(r.db_table, r.column, r.pk_column, r.ct_column)
        target = self.table(r.target_table, r.target_column) if r.target_table else None
        if child is None or (r.target_table and target is None):
            return
        if r.kind == "generic":
            statement = queries.generic_orphans(child, r.ct_column, r.column, r.pk_column,
                                                r.content_type or 0, target, r.target_column, r.direct)
            self.add(r, child, statement)
        elif target is not None:
            self.add(r, child, queries.orphans(child, r.column, r.pk_column, target, r.target_column),
                     planner_off=queries.merge_join_settings(child, r.column, target, r.target_column))

    def content_types(self, spec: relations.GenericSpec) -> None:
        child, cts = self.table(spec.db_table, spec.ct_column, spec.id_column), self.table(spec.ct_table)
        if child is not None and cts is not None:
            self.add(spec, child, queries.content_types_used(child, spec.ct_column, cts), many=True)

    def natural_key(self, key: declared.NaturalKey) -> None:
        table = self.table(key.model._meta.db_table, *key.columns)
        if table is not None:
            pk = relations.pk_column(key.model) or key.columns[0]
            self.add(dup_key(key), table, queries.duplicates(
                table, key.columns, pk, loose=key.loose, key_is_integer=relations.integer_key(key.model)))

    def unenforced_uniques(self, model: Any) -> None:
        """Rows breaking a unique declaration of the model that no valid unique index enforces."""
        table = self.table(model._meta.db_table)
        if table is None:
            return
        indexes = self.found.uniques.get(table.oid, [])
        for unique in declared.uniques(model):
            if unique.conditional or schema.enforced(indexes, unique.columns, unique.name):
                continue
            if self.table(model._meta.db_table, *unique.columns) is None:
                continue
            key = ("unique", model._meta.label, unique)
            pk = relations.pk_column(model) or unique.columns[0]
            self.uniques.append(key)
            self.add(key, table, queries.duplicates(
                table, unique.columns, pk, skip_nulls=unique.nulls_distinct,
                key_is_integer=relations.integer_key(model)))

    def conditional_uniques(self, model: Any) -> list[str]:
        """Notes on conditional or expression unique constraints that no index of that name enforces."""
        table = self.table(model._meta.db_table)
        indexes = self.found.uniques.get(table.oid, []) if table is not None else []
        return [
            f"{model._meta.label}: unique constraint {u.name} is not enforced (conditional: rows not checked)"
            for u in declared.uniques(model)
            if table is not None and u.conditional and not schema.enforced(indexes, (), u.name)
        ]
