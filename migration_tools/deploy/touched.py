"""The existing tables a plan's operations change or lock, read from the operations themselves."""

from __future__ import annotations

from typing import Any

from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState


def _model_table(state: ProjectState, app: str, name: str) -> str | None:
    model = state.models.get((app, name.lower()))
    if model is None:
        return None
    return str(model.options.get("db_table") or f"{app}_{name.lower()}")


def _related(state: ProjectState, app: str, field: Any) -> str | None:
    remote = getattr(getattr(field, "remote_field", None), "model", None)
    if not isinstance(remote, str) or remote.startswith("__"):  # a swappable setting's name
        return None
    target_app, _, target = remote.rpartition(".")
    return _model_table(state, target_app or app, target)


def touched_tables(before: ProjectState, migrations: list[Migration]) -> list[str]:
    """Tables that exist before the run (in `before`) and that an operation names, with the
    tables a new foreign key references (adding it locks them too). Order of first mention."""
    found: dict[str, None] = {}
    for migration in migrations:
        app = migration.app_label
        for operation in migration.operations:
            name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
            if isinstance(name, str):
                table = _model_table(before, app, name)
                if table:
                    found[table] = None
            related = _related(before, app, getattr(operation, "field", None))
            if related:
                found[related] = None
    return list(found)
