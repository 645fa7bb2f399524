"""Which migrations need their SQL collected at all.

A migration whose every operation is a plain model, field, index or constraint change on
tables created earlier in the same scope (the plan online; the migration itself offline),
with no relation to a table outside it, can take no lock the application would notice: its
SQL cannot produce a finding. Skipping it saves rendering its models (the costly part of
collecting SQL: a long history from an empty database is mostly such migrations). Anything
else (RunSQL, RunPython, SeparateDatabaseAndState, third-party operations, a foreign key to an
existing table) is always collected.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations import operations as ops
from django.db.migrations.migration import Migration
from django.db.migrations.utils import resolve_relation

ModelKey = tuple[str, str]

MODEL_OPS = (ops.DeleteModel, ops.AlterModelTable, ops.AlterModelOptions, ops.AlterModelManagers,
             ops.AlterUniqueTogether, ops.AlterIndexTogether, ops.AlterOrderWithRespectTo)
FIELD_OPS = (ops.AddField, ops.AlterField, ops.RemoveField, ops.RenameField, ops.AddIndex,
             ops.RemoveIndex, ops.RenameIndex, ops.AddConstraint, ops.RemoveConstraint)


def _targets(app: str, model: str, fields: list[Any]) -> list[ModelKey]:
    """The models the fields' relations point at (the tables their constraints lock)."""
    out = []
    for field in fields:
        remote = getattr(field, "remote_field", None)
        if remote is None:
            continue
        out.append(resolve_relation(remote.model, app, model))
        through = getattr(remote, "through", None)
        if through is not None:
            out.append(resolve_relation(through, app, model))
    return out


def _comment_op() -> tuple[type, ...]:
    comment = getattr(ops, "AlterModelTableComment", None)  # Django 4.2+
    return (comment,) if comment is not None else ()


def tables_created(migration: Migration, state: Any, max_length: int) -> set[str]:
    """The tables a skipped migration's CreateModel and RenameModel make (its state applied)."""
    from django.db.backends.utils import truncate_name

    app, out = migration.app_label, set()
    for op in migration.operations:
        name = getattr(op, "new_name_lower", None) or getattr(op, "name_lower", None)
        if not isinstance(op, (ops.CreateModel, ops.RenameModel)) or name is None:
            continue
        declared = op.options.get("db_table") if isinstance(op, ops.CreateModel) else None
        out.add(declared or truncate_name(f"{app}_{name}", max_length))
        model = state.models.get((app, name))
        if model is not None and model.options.get("db_table"):
            out.add(model.options["db_table"])
    return out


def only_new_tables(migration: Migration, created: set[ModelKey]) -> bool:
    """True when every operation touches only models in `created` (updated as CreateModel and
    RenameModel go by, whatever the answer)."""
    app = migration.app_label
    local: set[ModelKey] = set()
    safe = True
    for op in migration.operations:
        if isinstance(op, ops.CreateModel):
            key = (app, op.name_lower)
            local.add(key)
            fields = [f for _, f in op.fields]
            safe = safe and all(t in created or t in local for t in _targets(app, op.name_lower, fields))
        elif isinstance(op, ops.RenameModel):
            old = (app, op.old_name_lower)
            safe = safe and (old in created or old in local)
            if old in created or old in local:
                local.add((app, op.new_name_lower))
        elif isinstance(op, MODEL_OPS + _comment_op()):
            safe = safe and ((app, op.name_lower) in created or (app, op.name_lower) in local)
        elif isinstance(op, FIELD_OPS):
            key = (app, op.model_name_lower)
            field = getattr(op, "field", None)
            targets = _targets(app, op.model_name_lower, [field] if field is not None else [])
            safe = safe and (key in created or key in local) and all(
                t in created or t in local for t in targets)
        else:
            safe = False
    created.update(local)
    return safe
