"""The release to run: Django's own loader and executor, validated once, before anything changes."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder

from migration_tools.core.errors import OperationFailed, prog_name

MigrationKey = tuple[str, str]


@dataclass(frozen=True)
class AppState:
    app: str
    applied: int
    pending: int


@dataclass
class Release:
    """The executor that will apply the release, what it will apply, and what was applied before."""

    alias: str
    executor: MigrationExecutor
    pending: list[Migration]
    applied_before: set[MigrationKey]

    @property
    def pending_keys(self) -> list[MigrationKey]:
        return [(m.app_label, m.name) for m in self.pending]


def executor(alias: str) -> MigrationExecutor:
    return MigrationExecutor(connections[alias])


def check_conflicts(ex: MigrationExecutor) -> None:
    """Django's validation before any plan: a consistent applied history, then no conflicting leaves.

    Both raise OperationFailed (exit 1) naming the app and the fix, before anything is changed.
    """
    try:
        ex.loader.check_consistent_history(ex.connection)
    except InconsistentMigrationHistory as exc:
        raise OperationFailed(
            "migration-history",
            f"inconsistent migration history: {str(exc).rstrip('.')}",
            "the database's django_migrations rows do not match the migration files; find out how "
            f"(a renamed or removed migration, a wrong database), then run {prog_name()} check-migrations",
        ) from exc
    check_leaves(ex)


def check_leaves(ex: MigrationExecutor) -> None:
    """No app may have two leaf migrations (what makemigrations --merge fixes)."""
    conflicts = ex.loader.detect_conflicts()
    if conflicts:
        app, names = sorted(conflicts.items())[0]
        raise OperationFailed(
            "migration-conflict",
            f"conflicting leaf migrations in app '{app}': {', '.join(sorted(names))}",
            f"run python manage.py makemigrations --merge {app}, then {prog_name()} check-migrations",
        )


def prepare(alias: str) -> Release:
    """Load the graph once, check the history and conflicts once, and list what will run."""
    ex = executor(alias)
    check_conflicts(ex)
    return Release(alias, ex, pending(ex), applied_set(alias))


def forward_targets(ex: MigrationExecutor) -> list[MigrationKey]:
    return list(ex.loader.graph.leaf_nodes())


def pending(ex: MigrationExecutor) -> list[Migration]:
    """Migrations still to apply, in the order the executor applies them."""
    plan = ex.migration_plan(forward_targets(ex))
    return [migration for migration, backwards in plan if not backwards]


def per_app(ex: MigrationExecutor) -> list[AppState]:
    """Applied and pending migrations per app, counted on the graph as showmigrations shows it.

    A fully applied squashed migration counts once (django_migrations also holds a row for
    each migration it replaces), and rows of migrations no longer on disk are not counted.
    """
    graph_nodes = ex.loader.graph.nodes
    applied = {key for key in ex.loader.applied_migrations if key in graph_nodes}
    todo = {(m.app_label, m.name) for m in pending(ex)}
    apps = sorted({app for app, _ in ex.loader.graph.nodes})
    return [
        AppState(app, sum(1 for key in applied if key[0] == app), sum(1 for key in todo if key[0] == app))
        for app in apps
    ]


def applied_set(alias: str) -> set[MigrationKey]:
    return set(MigrationRecorder(connections[alias]).applied_migrations())
