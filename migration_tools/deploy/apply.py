"""Apply or unapply migrations with Django's own executor, telling progress as events.

The executor never prints: it calls `progress_callback`, which we turn into migration events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ProjectState

from migration_tools.core.events import Event, Report
from migration_tools.deploy.plan import MigrationKey, Release, executor, forward_targets
from migration_tools.pg.catalog import OWN_WRITES_SQL


@dataclass(frozen=True)
class Step:
    app: str
    name: str
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


@dataclass
class RunResult:
    """What a forwards or backwards run did; `error` is set when a migration failed.

    In one transaction, a failure leaves nothing applied: `done` lists what ran before the
    failure and was rolled back with it (`rolled_back` is True). `own_writes` counts the rows the
    run's committed transactions wrote per table; `own_writes_known` is False when a
    non-atomic migration wrote outside any transaction the kit could read.
    """

    done: list[Step] = field(default_factory=list)
    failed: MigrationKey | None = None
    error: BaseException | None = None
    rolled_back: bool = False
    failed_at: float = 0.0  # time.monotonic() when the failure surfaced, before any rollback
    own_writes: dict[str, int] = field(default_factory=dict)
    own_writes_known: bool = True
    operations_done: int = 0  # operations of the failed migration that completed before it failed

    @property
    def keys(self) -> list[MigrationKey]:
        return [(s.app, s.name) for s in self.done]


def _callback(total: int, report: Report, result: RunResult, *, backwards: bool) -> Callable[..., None]:
    started: dict[MigrationKey, float] = {}

    def callback(action: str, migration: Migration | None = None, fake: bool = False) -> None:
        if migration is None:
            return
        key = (migration.app_label, migration.name)
        label = f"{migration.app_label}.{migration.name}"
        index = len(result.done) + 1
        if action in ("apply_start", "unapply_start"):
            started[key] = time.monotonic()
            result.failed = key
            result.operations_done = 0
            report(Event("migration", phase="start", label=label, index=index, total=total,
                         backwards=backwards))
        elif action in ("apply_success", "unapply_success"):
            seconds = time.monotonic() - started.get(key, time.monotonic())
            result.done.append(Step(migration.app_label, migration.name, seconds))
            result.failed = None
            report(Event("migration", phase="done", label=label, index=index, total=total,
                         seconds=seconds, backwards=backwards))

    return callback


def can_run_in_one_transaction(release: Release) -> bool:
    """True when every pending migration is atomic (a non-atomic one, e.g. a concurrent index
    build, cannot run inside a transaction block)."""
    return all(migration.atomic for migration in release.pending)


def _count_own_writes(migrations: list[Migration], result: RunResult) -> None:
    """Read each migration's own row writes inside its transaction, before it commits."""
    for migration in migrations:
        original = migration.apply

        def apply(state: ProjectState, schema_editor: BaseDatabaseSchemaEditor, collect_sql: bool = False,
                  _original: Callable[..., ProjectState] = original, _atomic: bool = migration.atomic
                  ) -> ProjectState:
            new_state = _original(state, schema_editor, collect_sql)
            if not _atomic:
                result.own_writes_known = False
                return new_state
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(OWN_WRITES_SQL)
                for schema, table, count in cursor.fetchall():
                    key = f"{schema}.{table}"
                    result.own_writes[key] = result.own_writes.get(key, 0) + int(count)
            return new_state

        migration.apply = apply  # type: ignore[method-assign]


def _count_operations(migrations: list[Migration], result: RunResult) -> None:
    """Count each migration's completed operations, so a failure says how far it got."""
    for migration in migrations:
        for operation in migration.operations:
            original = operation.database_forwards

            def forwards(*args: object, _original: Callable[..., None] = original) -> None:
                _original(*args)
                result.operations_done += 1

            operation.database_forwards = forwards  # type: ignore[method-assign]


def _settle_constraints(alias: str) -> None:
    """Check the deferred foreign keys a migration left pending, then defer again.

    In one transaction a data migration's pending checks would otherwise make a later ALTER
    TABLE of the same table fail with "pending trigger events".
    """
    with connections[alias].cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def apply_pending(release: Release, report: Report, *, one_transaction: bool, limit: int | None = None
                  ) -> RunResult:
    """Apply the release's plan in the executor's order; never raises for a failing migration.

    `one_transaction`: the whole plan in one transaction, each migration in a savepoint; a
    failure rolls everything back (PostgreSQL's own undo: exact for schema and data, and the
    application's writes are untouched). Otherwise each migration commits on its own, as
    `manage.py migrate` does, and the result says which were applied before the failure.
    The history and conflicts were checked when the release was prepared. `limit`: only the
    first so many migrations of the plan (a phase of zero-downtime).
    """
    ex = release.executor
    targets = forward_targets(ex)
    full_plan = ex.migration_plan(targets)[:limit]
    result = RunResult()
    _count_operations([m for m, _backwards in full_plan], result)
    tell = _callback(len(full_plan), report, result, backwards=False)
    if one_transaction:
        def settle_then_tell(action: str, migration: Migration | None = None, fake: bool = False) -> None:
            if action == "apply_success":
                _settle_constraints(release.alias)
            tell(action, migration, fake)

        ex.progress_callback = settle_then_tell
    else:
        _count_own_writes(release.pending, result)
        ex.progress_callback = tell
    pre_state = ex._create_project_state(with_applied_migrations=True)
    emit_pre_migrate_signal(0, False, release.alias, stdout=None, apps=pre_state.apps, plan=full_plan)
    whole_run = transaction.atomic(using=release.alias) if one_transaction else contextlib.nullcontext()
    try:
        whole_run.__enter__()
        try:
            post_state = ex.migrate(targets, plan=full_plan, state=pre_state.clone())
            if one_transaction:
                with connections[release.alias].cursor() as cursor:
                    cursor.execute(OWN_WRITES_SQL)
                    result.own_writes = {f"{s}.{t}": int(n) for s, t, n in cursor.fetchall()}
        except (Exception, KeyboardInterrupt) as exc:
            result.failed_at = time.monotonic()
            whole_run.__exit__(type(exc), exc, exc.__traceback__)  # one transaction: ROLLBACK here
            raise
        whole_run.__exit__(None, None, None)
    except (Exception, KeyboardInterrupt) as exc:
        result.error = exc
        result.failed_at = result.failed_at or time.monotonic()
        result.rolled_back = one_transaction
        return result
    post_state.clear_delayed_apps_cache()
    # In a transaction of its own, so the rows its handlers write (content types, permissions)
    # count as this run's writes, not as the application's.
    with transaction.atomic(using=release.alias):
        emit_post_migrate_signal(0, False, release.alias, stdout=None, apps=post_state.apps, plan=full_plan)
        with connections[release.alias].cursor() as cursor:
            cursor.execute(OWN_WRITES_SQL)
            for schema, table, count in cursor.fetchall():
                key = f"{schema}.{table}"
                result.own_writes[key] = result.own_writes.get(key, 0) + int(count)
    return result


def executor_with(alias: str, keys: list[MigrationKey]) -> MigrationExecutor:
    """An executor whose graph holds every one of `keys`.

    When a run applied the last migrations a squash replaces, a fresh loader sees the squash as
    applied and drops the replaced migrations from its graph; those are what we must unapply.
    """
    ex = executor(alias)
    if any(key not in ex.loader.graph.nodes for key in keys):
        ex.loader = MigrationLoader(connections[alias], replace_migrations=False)
    return ex


def reverse_problem(operation: Operation) -> str:
    """Why undoing `operation` would not restore the data as it was, or ''."""
    if isinstance(operation, RunPython) and operation.reverse_code in (None, RunPython.noop):
        what = "a no-op reverse" if operation.reverse_code else "no reverse"
        return f"RunPython({getattr(operation.code, '__name__', 'code')}) has {what}"
    if isinstance(operation, RunSQL) and operation.reverse_sql is not None and (
        operation.reverse_sql == RunSQL.noop or not str(operation.reverse_sql).strip()
        or operation.reverse_sql in ([], ())
    ):
        return "RunSQL has an empty reverse_sql"
    if not operation.reversible:
        return f"{operation.describe()} is irreversible"
    return ""


def reverse_blockers(alias: str, keys: list[MigrationKey]) -> list[str]:
    """The migrations among `keys` whose reverse operations would not restore the data, with why.

    Django calls a RunPython with `RunPython.noop` reverse, or a RunSQL with an empty reverse,
    reversible; undone that way the rows their forward code changed stay changed.
    """
    nodes = executor_with(alias, keys).loader.graph.nodes
    found = []
    for key in keys:
        problems = [p for p in (reverse_problem(op) for op in nodes[key].operations) if p]
        if problems:
            found.append(f"{key[0]}.{key[1]} ({problems[0]})")
    return found


def unapply(alias: str, keys: list[MigrationKey], report: Report) -> RunResult:
    """Unapply exactly `keys` (migrations this run applied), newest first."""
    ex = executor_with(alias, keys)
    nodes = ex.loader.graph.nodes
    backwards_plan = [(nodes[key], True) for key in reversed(keys)]
    result = RunResult()
    ex.progress_callback = _callback(len(backwards_plan), report, result, backwards=True)
    try:
        ex.migrate([], plan=backwards_plan)
    except Exception as exc:
        result.error = exc
    return result
