"""Apply or unapply migrations with Django's own executor, reporting progress through a callback.

The executor never prints: it calls `progress_callback`, which we turn into events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration

from migration_tools.deploy import plan as plan_mod

MigrationKey = tuple[str, str]


@dataclass(frozen=True)
class Step:
    app: str
    name: str
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


# (event "start" | "done", migration, index 1-based, total, seconds elapsed for that migration)
ProgressFn = Callable[[str, Migration, int, int, float], None]


@dataclass
class RunResult:
    """What a forwards or backwards run did; `error` is set when a migration failed."""

    done: list[Step] = field(default_factory=list)
    failed: MigrationKey | None = None
    error: BaseException | None = None

    @property
    def keys(self) -> list[MigrationKey]:
        return [(s.app, s.name) for s in self.done]


def _callback(total: int, progress: ProgressFn, result: RunResult) -> Callable[..., None]:
    started: dict[MigrationKey, float] = {}

    def callback(action: str, migration: Migration | None = None, fake: bool = False) -> None:
        if migration is None:
            return
        key = (migration.app_label, migration.name)
        index = len(result.done) + 1
        if action in ("apply_start", "unapply_start"):
            started[key] = time.monotonic()
            result.failed = key
            progress("start", migration, index, total, 0.0)
        elif action in ("apply_success", "unapply_success"):
            seconds = time.monotonic() - started.get(key, time.monotonic())
            result.done.append(Step(migration.app_label, migration.name, seconds))
            result.failed = None
            progress("done", migration, index, total, seconds)

    return callback


def apply_pending(
    alias: str, progress: ProgressFn, ex: MigrationExecutor | None = None
) -> RunResult:
    """Apply every pending migration in the executor's order; never raises for a failing migration.

    A failing migration's own transaction is rolled back by Django (atomic migrations on
    PostgreSQL); the result says which migrations were applied before it. `ex` may be an
    executor the caller built since the last change to the database.
    """
    connection = connections[alias]
    ex = ex or plan_mod.executor(alias)
    ex.loader.check_consistent_history(connection)
    plan_mod.check_conflicts(ex)
    targets = plan_mod.forward_targets(ex)
    full_plan = ex.migration_plan(targets)
    total = sum(1 for _, backwards in full_plan if not backwards)
    result = RunResult()
    ex.progress_callback = _callback(total, progress, result)
    pre_state = ex._create_project_state(with_applied_migrations=True)
    emit_pre_migrate_signal(0, False, alias, stdout=None, apps=pre_state.apps, plan=full_plan)
    try:
        post_state = ex.migrate(targets, plan=full_plan, state=pre_state.clone())
    except Exception as exc:
        result.error = exc
        return result
    post_state.clear_delayed_apps_cache()
    emit_post_migrate_signal(0, False, alias, stdout=None, apps=post_state.apps, plan=full_plan)
    return result


def executor_with(alias: str, keys: list[MigrationKey]) -> MigrationExecutor:
    """An executor whose graph holds every one of `keys`.

    When a run applied the last migrations a squash replaces, a fresh loader sees the squash as
    applied and drops the replaced migrations from its graph; those are what we must unapply.
    """
    ex = plan_mod.executor(alias)
    if any(key not in ex.loader.graph.nodes for key in keys):
        ex.loader = MigrationLoader(connections[alias], replace_migrations=False)
    return ex


def irreversible(alias: str, keys: list[MigrationKey]) -> list[str]:
    """The labels of the migrations among `keys` that cannot be unapplied."""
    nodes = executor_with(alias, keys).loader.graph.nodes
    bad = []
    for key in keys:
        migration = nodes[key]
        if any(not op.reversible for op in migration.operations):
            bad.append(f"{key[0]}.{key[1]}")
    return bad


def unapply(alias: str, keys: list[MigrationKey], progress: ProgressFn) -> RunResult:
    """Unapply exactly `keys` (migrations this run applied), newest first."""
    ex = executor_with(alias, keys)
    nodes = ex.loader.graph.nodes
    backwards_plan = [(nodes[key], True) for key in reversed(keys)]
    result = RunResult()
    ex.progress_callback = _callback(len(backwards_plan), progress, result)
    try:
        ex.migrate([], plan=backwards_plan)
    except Exception as exc:
        result.error = exc
    return result
