"""The SQL Django would run for each pending migration, per operation, without running it.

As `sqlmigrate` does: the schema editor in collect mode, operation by operation, from the
project state the executor would start from. Unlike `loader.collect_sql` per migration, the
state is built once for the whole plan (as `migrate` does), and no transaction is opened, so
it also runs without a database (`--offline`) as far as Django's SQL needs none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.fields import AlterField
from django.db.migrations.operations.special import RunPython, RunSQL, SeparateDatabaseAndState

from migration_tools.lint.scope import only_new_tables, tables_created
from migration_tools.lint.settings import ACCEPT_ATTRIBUTE


@dataclass(frozen=True)
class Chunk:
    operation: str  # the operation's describe(), or what a deferred statement belongs to
    sql: str  # one or more statements, as the schema editor collected them
    run_sql: bool = False
    index: int = 0  # the operation's place in the migration


@dataclass(frozen=True)
class Review:
    """What cannot be read as SQL: a RunPython, a RunSQL as a whole, or an operation that failed."""

    rule: str  # run-python, run-sql, not-collected
    operation: str
    detail: dict[str, str]
    index: int = 0


@dataclass
class Collected:
    app: str
    name: str
    atomic: bool
    marker: Any  # the Migration class's migration_kit_accept, if any
    chunks: list[Chunk] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    column_types: dict[tuple[str, str], str] = field(default_factory=dict)  # before an AlterField
    skipped: bool = False  # only tables created earlier in its scope: nothing collected (lint.scope)
    created_tables: set[str] = field(default_factory=set)  # what a skipped migration creates

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


def function_name(func: Any) -> str:
    module = getattr(func, "__module__", "") or ""
    return f"{module.rsplit('.', 1)[-1]}.{getattr(func, '__qualname__', repr(func))}".lstrip(".")


def run_python_review(operation: Operation, index: int = 0) -> Review:
    reverse = getattr(operation, "reverse_code", None)
    if not operation.reversible:
        reverse_text = "none (irreversible)"
    elif reverse is RunPython.noop:
        reverse_text = "RunPython.noop (its changes stay when undone)"
    else:
        reverse_text = function_name(reverse) if reverse is not None else "its own database_backwards"
    return Review("run-python", operation.describe(),
                  {"function": function_name(getattr(operation, "code", type(operation))),
                   "reverse": reverse_text}, index)


def run_sql_review(operation: RunSQL, statements: int, index: int = 0) -> Review:
    reverse = operation.reverse_sql
    reverse_text = "none (irreversible)" if reverse is None else (
        "RunSQL.noop" if reverse == RunSQL.noop or reverse == [] else "given")
    return Review("run-sql", operation.describe(), {"count": str(statements), "reverse": reverse_text},
                  index)


def python_inside(operation: Operation) -> list[Operation]:
    """The operations that would run Python (RunPython, or any that cannot be written as SQL),
    nested in SeparateDatabaseAndState too: collecting SQL must never run them."""
    if not operation.reduces_to_sql:
        return [operation]
    if isinstance(operation, SeparateDatabaseAndState):
        return [op for inner in operation.database_operations for op in python_inside(inner)]
    return []


def offline_editor(connection: BaseDatabaseWrapper) -> BaseDatabaseSchemaEditor:
    """The backend's schema editor in collect mode, with the two places where Django's SQL
    rendering asks the server answered without it: parameters are quoted client-side (as
    `quote_value` does, which needs no connection), and introspected constraint names are
    unknown (so drops of constraints Django would look up are not listed)."""
    base: type[BaseDatabaseSchemaEditor] = connection.SchemaEditorClass

    class OfflineEditor(base):  # type: ignore[valid-type,misc]
        def execute(self, sql: Any, params: Any = ()) -> None:
            if params:
                sql = str(sql) % tuple(self.quote_value(p) for p in params)
            super().execute(sql, None)

        def _constraint_names(self, *args: Any, **kwargs: Any) -> list[str]:
            return []

    return OfflineEditor(connection, collect_sql=True, atomic=False)


def collect(executor: MigrationExecutor, migrations: list[Migration],
            connection: BaseDatabaseWrapper, *, offline: bool = False) -> list[Collected]:
    """Each migration's SQL in plan order, the state carried from one to the next.

    A migration that only touches tables created earlier in its scope is skipped (its state
    still carried forward, without rendering models: see `lint.scope`).
    """
    state = executor._create_project_state(with_applied_migrations=True)
    created: set[tuple[str, str]] = set()
    skip = []
    for migration in migrations:
        if offline:
            created = set()  # offline each migration is judged as if the ones before were released
        skip.append(only_new_tables(migration, created))
    out = []
    for position, migration in enumerate(migrations):
        found = Collected(migration.app_label, migration.name, migration.atomic,
                          getattr(migration, ACCEPT_ATTRIBUTE, None))
        out.append(found)
        if skip[position]:
            found.skipped = True
            if _skipped_operations(migrations, skip, position) > RELOADS_PER_RENDER:
                state.__dict__.pop("apps", None)  # carried forward unrendered, rendered again later
            migration.mutate_state(state, preserve=False)
            found.created_tables = tables_created(migration, state, connection.ops.max_name_length())
            continue
        state.apps  # noqa: B018 - render once; each operation then reloads only what it changes
        editor = (offline_editor(connection) if offline
                  else connection.schema_editor(collect_sql=True, atomic=False))
        state = _collect_one(migration, state, editor, found)
    return out


# A full render of the project's models costs about as much as this many incremental reloads
# (one per operation) on a rendered state: a longer run of skipped migrations drops the render.
RELOADS_PER_RENDER = 6


def _skipped_operations(migrations: list[Migration], skip: list[bool], position: int) -> int:
    """Operations in the run of skipped migrations starting at `position`."""
    count = 0
    for migration, skipped in zip(migrations[position:], skip[position:], strict=True):
        if not skipped:
            return count
        count += len(migration.operations)
    return RELOADS_PER_RENDER + 1  # the plan ends skipped: never render again


def _collect_one(migration: Migration, state: Any, editor: BaseDatabaseSchemaEditor, found: Collected) -> Any:
    owners: dict[int, str] = {}
    with editor:
        for index, operation in enumerate(migration.operations):
            label = operation.describe()
            python = list(python_inside(operation))
            if python:  # RunPython (maybe inside SeparateDatabaseAndState): read, never run
                found.reviews.extend(run_python_review(op, index) for op in python
                                     if getattr(op, "code", None) is not RunPython.noop)
                operation.state_forwards(migration.app_label, state)
                continue
            before, deferred_before = len(editor.collected_sql), len(editor.deferred_sql)
            old_state = state.clone()
            operation.state_forwards(migration.app_label, state)
            try:
                operation.database_forwards(migration.app_label, editor, old_state, state)
            except Exception as exc:  # e.g. introspection offline: say so, go on
                found.reviews.append(Review("not-collected", label, {"error": _first_line(exc)}, index))
                continue
            if isinstance(operation, AlterField):
                _old_type(migration.app_label, operation, old_state, editor, found)
            sqls = editor.collected_sql[before:]
            found.chunks.extend(Chunk(label, sql, isinstance(operation, RunSQL), index) for sql in sqls)
            if isinstance(operation, RunSQL):
                found.reviews.append(run_sql_review(operation, len(sqls), index))
            for statement in editor.deferred_sql[deferred_before:]:
                owners[id(statement)] = label
        deferred = [owners.get(id(s), "deferred to the end of the migration") for s in editor.deferred_sql]
        last = len(migration.operations)
        at_exit = len(editor.collected_sql)
    tail = editor.collected_sql[at_exit:]
    found.chunks.extend(Chunk(label, sql, index=last) for label, sql in zip(deferred, tail, strict=False))
    return state


def _old_type(app: str, operation: AlterField, old_state: Any, editor: BaseDatabaseSchemaEditor,
              found: Collected) -> None:
    """The column's type before an AlterField, as Django declares it: what ALTER TYPE changes from."""
    try:
        model = old_state.apps.get_model(app, operation.model_name)
        old = model._meta.get_field(operation.name)
        db_type = old.db_type(editor.connection)
    except LookupError:
        return
    if db_type:
        found.column_types.setdefault((model._meta.db_table, old.column), db_type)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
