"""Apply the pending plan with Django's own executor, reporting progress through a callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.migrations.migration import Migration

from migration_tools import plan as plan_mod


@dataclass(frozen=True)
class Applied:
    app: str
    name: str
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


# (event, migration, index 1-based, total, seconds elapsed for that migration)
ProgressFn = Callable[[str, Migration, int, int, float], None]


def apply_pending(alias: str, progress: ProgressFn) -> list[Applied]:
    """Apply every pending migration; returns what was applied, in order.

    On failure the exception propagates; the list passed to `done` holds what succeeded.
    """
    connection = connections[alias]
    ex = plan_mod.executor(alias)
    ex.loader.check_consistent_history(connection)
    plan_mod.check_conflicts(ex)
    targets = plan_mod.forward_targets(ex)
    full_plan = ex.migration_plan(targets)
    todo = [m for m, backwards in full_plan if not backwards]
    total = len(todo)
    applied: list[Applied] = []
    started: dict[str, float] = {}

    def callback(action: str, migration: Migration | None = None, fake: bool = False) -> None:
        if migration is None:
            return
        key = f"{migration.app_label}.{migration.name}"
        index = len(applied) + 1
        if action == "apply_start":
            started[key] = time.monotonic()
            progress("start", migration, index, total, 0.0)
        elif action == "apply_success":
            seconds = time.monotonic() - started.get(key, time.monotonic())
            applied.append(Applied(migration.app_label, migration.name, seconds))
            progress("success", migration, index, total, seconds)

    pre_state = ex._create_project_state(with_applied_migrations=True)
    emit_pre_migrate_signal(0, False, alias, stdout=None, apps=pre_state.apps, plan=full_plan)
    ex.progress_callback = callback
    post_state = ex.migrate(targets, plan=full_plan, state=pre_state.clone())
    post_state.clear_delayed_apps_cache()
    emit_post_migrate_signal(0, False, alias, stdout=None, apps=post_state.apps, plan=full_plan)
    return applied
