"""`verify-data`: record counts, orphaned rows, potential duplicates and invalid indexes.

Works on any project: the models are those of the applied migrations' state (the configured
critical models, else every concrete managed model), so the checks match the tables as they
are now, before or after a migration. The checks are plain SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import models
from django.db.migrations.state import StateApps
from psycopg import sql

from migration_tools.core.config import KitSettings
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import BadInput
from migration_tools.deploy import plan
from migration_tools.pg import catalog, db

STATEMENT_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class ModelCount:
    label: str  # e.g. "medications.models.Medication", as the seed document prints it
    rows: int


@dataclass(frozen=True)
class Orphans:
    model: str
    field: str
    rows: int


@dataclass(frozen=True)
class Duplicates:
    model: str
    fields: tuple[str, ...]
    extra_rows: int


@dataclass
class IntegrityReport:
    counts: list[ModelCount] = field(default_factory=list)
    orphans: list[Orphans] = field(default_factory=list)
    duplicates: list[Duplicates] = field(default_factory=list)
    invalid_indexes: list[str] = field(default_factory=list)
    plural_names: dict[str, str] = field(default_factory=dict)

    @property
    def orphan_total(self) -> int:
        return sum(o.rows for o in self.orphans)

    @property
    def duplicate_total(self) -> int:
        return sum(d.extra_rows for d in self.duplicates)

    @property
    def ok(self) -> bool:
        return self.orphan_total == 0 and not self.invalid_indexes

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": {c.label: c.rows for c in self.counts},
            "orphans": [vars(o) for o in self.orphans],
            "orphan_total": self.orphan_total,
            "duplicates": [
                {"model": d.model, "fields": list(d.fields), "extra_rows": d.extra_rows}
                for d in self.duplicates
            ],
            "duplicate_total": self.duplicate_total,
            "invalid_indexes": self.invalid_indexes,
        }


def applied_state_apps(alias: str) -> StateApps:
    """Models as the applied migrations left them: the columns that exist in the database now."""
    return plan.executor(alias)._create_project_state(with_applied_migrations=True).apps


def _model(label: str, state_apps: StateApps) -> type[models.Model]:
    try:
        return state_apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise BadInput(
            "critical-model-unknown",
            f"MIGRATION_KIT names model '{label}', which the applied migrations do not define",
            "fix CRITICAL_MODELS / DUPLICATE_KEYS in the settings (app_label.ModelName)",
        ) from exc


def checked_models(settings: KitSettings, state_apps: StateApps) -> list[type[models.Model]]:
    if settings.critical_models:
        return [_model(label, state_apps) for label in settings.critical_models]
    return [
        m for m in state_apps.get_models()
        if m._meta.managed and not m._meta.proxy and not m._meta.swapped
    ]


def _table(model: type[models.Model]) -> sql.Identifier:
    return sql.Identifier(model._meta.db_table)


def count_rows(conn: psycopg.Connection[Any], model: type[models.Model]) -> int:
    return int(db.scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(_table(model))))


def orphan_rows(conn: psycopg.Connection[Any], model: type[models.Model]) -> list[Orphans]:
    """Rows whose foreign key points at a parent row that does not exist."""
    found = []
    for fk in model._meta.concrete_fields:
        if not isinstance(fk, models.ForeignKey):
            continue
        parent = fk.related_model
        if not isinstance(parent, type):
            continue
        target = fk.target_field
        query = sql.SQL(
            "SELECT count(*) FROM {child} c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM {parent} p WHERE p.{pcol} = c.{col})"
        ).format(
            child=_table(model),
            col=sql.Identifier(fk.column),
            parent=_table(parent),
            pcol=sql.Identifier(target.column),
        )
        found.append(Orphans(model._meta.label, fk.name, int(db.scalar(conn, query))))
    return found


def duplicate_rows(
    conn: psycopg.Connection[Any], model: type[models.Model], field_names: tuple[str, ...]
) -> Duplicates:
    """Rows beyond the first of each group sharing the natural key."""
    try:
        columns = [sql.Identifier(model._meta.get_field(name).column) for name in field_names]
    except Exception as exc:
        raise BadInput(
            "duplicate-key-unknown",
            f"DUPLICATE_KEYS of {model._meta.label} names a field it does not have: {exc}",
            "fix DUPLICATE_KEYS in the settings",
        ) from exc
    query = sql.SQL(
        "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {t} GROUP BY {cols} "
        "HAVING count(*) > 1) g"
    ).format(t=_table(model), cols=sql.SQL(", ").join(columns))
    return Duplicates(model._meta.label, field_names, int(db.scalar(conn, query)))


def verify_data_integrity(params: ConnParams, settings: KitSettings, alias: str) -> IntegrityReport:
    """Every check, over one connection with a statement timeout."""
    report = IntegrityReport()
    state_apps = applied_state_apps(alias)
    models_to_check = checked_models(settings, state_apps)
    with db.connect(params, purpose="verify-data") as conn, db.statement_timeout(conn, STATEMENT_TIMEOUT_MS):
        for model in models_to_check:
            opts = model._meta
            label = f"{opts.app_label}.models.{opts.object_name}"
            report.counts.append(ModelCount(label, count_rows(conn, model)))
            report.plural_names[opts.label] = str(opts.verbose_name_plural)
            report.orphans.extend(orphan_rows(conn, model))
        for model_label, fields in settings.duplicate_keys.items():
            report.duplicates.append(duplicate_rows(conn, _model(model_label, state_apps), fields))
        report.invalid_indexes = catalog.invalid_indexes(conn)
    return report


def orphans_by_model(report: IntegrityReport) -> dict[str, int]:
    totals: dict[str, int] = {}
    for o in report.orphans:
        totals[o.model] = totals.get(o.model, 0) + o.rows
    return totals


def new_problems(before: IntegrityReport, after: IntegrityReport) -> list[str]:
    """Problems in `after` that `before` did not have: more orphans on a relation, a new invalid index."""
    was = {(o.model, o.field): o.rows for o in before.orphans}
    found = [
        f"{o.model}.{o.field}: {o.rows - was.get((o.model, o.field), 0):,} new orphaned row(s)"
        for o in after.orphans
        if o.rows > was.get((o.model, o.field), 0)
    ]
    found += [f"invalid index {name}" for name in after.invalid_indexes if name not in before.invalid_indexes]
    return found
