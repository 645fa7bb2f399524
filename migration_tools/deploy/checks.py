"""`check-migrations`: the pending plan, model changes without a migration, conflicting leaves."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
from django.db.migrations.state import ProjectState

from migration_tools.core.errors import OperationFailed, prog_name
from migration_tools.deploy import plan
from migration_tools.deploy.plan import Release


@dataclass
class MigrationCheck:
    pending: list[tuple[str, str]] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)


def unmigrated_changes(ex: MigrationExecutor) -> dict[str, list[str]]:
    """Model changes with no migration yet, per app: what makemigrations --check would report."""
    autodetector = MigrationAutodetector(
        ex.loader.project_state(),
        ProjectState.from_apps(apps),
        NonInteractiveMigrationQuestioner(specified_apps=None, dry_run=True),
    )
    changes = autodetector.changes(graph=ex.loader.graph)
    return {
        app: [op.describe() for migration in migrations for op in migration.operations]
        for app, migrations in changes.items()
    }


def run(release: Release) -> MigrationCheck:
    """What check-migrations reports of a prepared release."""
    return MigrationCheck(pending=release.pending_keys, missing=unmigrated_changes(release.executor))


def prepare_offline(alias: str) -> Release:
    """The release as the migration files alone tell it (check-migrations --offline).

    Nothing is read from the database: every migration counts as pending, and only conflicting
    leaves are checked (the applied history needs the database).
    """
    ex = MigrationExecutor(None)
    plan.check_leaves(ex)
    return Release(alias, ex, plan.pending(ex), set())


def missing_error(missing: dict[str, list[str]]) -> OperationFailed:
    app, ops = sorted(missing.items())[0]
    return OperationFailed(
        "migration-missing",
        f"models in app '{app}' have changes with no migration ({ops[0]})",
        f"run python manage.py makemigrations {app}, then {prog_name()} check-migrations",
    )
