"""What the models declare that verify-data compares with the database: uniqueness, counted
models and their labels, configured natural keys."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps as real_apps
from django.apps.registry import Apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from migration_tools.core.config import KitSettings
from migration_tools.deploy.integrity.labels import count_label, fallback_module

Model = type[models.Model]


@dataclass(frozen=True)
class Unique:
    """One unique declaration: a unique field (the primary key too), unique_together or a UniqueConstraint."""

    name: str
    fields: tuple[str, ...]
    columns: tuple[str, ...]
    nulls_distinct: bool = True
    conditional: bool = False  # a condition or expressions: only its own index enforces it


@dataclass(frozen=True)
class NaturalKey:
    """A configured DUPLICATE_KEYS entry, resolved on the applied state."""

    model: Model
    label: str
    fields: tuple[str, ...]
    columns: tuple[str, ...]
    loose: tuple[str, ...]  # columns compared case- and whitespace-insensitively


def uniques(model: Model) -> list[Unique]:
    opts = model._meta
    found = [
        Unique(f"{f.name} (primary key)" if f.primary_key else f"{f.name} (unique)", (f.name,), (f.column,))
        for f in opts.local_concrete_fields
        if f.unique and f.column
    ]
    for names in opts.unique_together:
        fields = [opts.get_field(n) for n in names]
        found.append(Unique(f"unique_together {', '.join(names)}", tuple(names),
                            tuple(str(getattr(f, "column", "")) for f in fields)))
    for constraint in opts.constraints:
        if not isinstance(constraint, models.UniqueConstraint):
            continue
        names = tuple(constraint.fields)
        columns = tuple(str(getattr(opts.get_field(n), "column", "")) for n in names)
        conditional = bool(constraint.condition is not None or constraint.expressions or not names)
        found.append(Unique(constraint.name, names, columns,
                            getattr(constraint, "nulls_distinct", None) is not False, conditional))
    return [u for u in found if all(u.columns) or u.conditional]


def model_label(model: Model) -> str:
    """`<real module>.<ClassName>` of the project's model class; its app's models module when the
    project no longer has the class (the applied migrations still do)."""
    opts = model._meta
    try:
        real = real_apps.get_model(opts.app_label, opts.model_name)
    except LookupError:
        try:
            module = real_apps.get_app_config(opts.app_label).module
            app_module = module.__name__ if module is not None else opts.app_label
        except LookupError:
            app_module = opts.app_label
        return count_label(fallback_module(app_module), opts.object_name or "")
    return count_label(real.__module__, real.__name__)


def counted_models(
    settings: KitSettings, state_apps: Apps, every: list[Model]
) -> tuple[list[Model], list[str]]:
    """The critical models (all when none are configured), and notes on those not yet migrated."""
    if not settings.critical_models:
        return every, []
    found, notes = [], []
    for label in settings.critical_models:
        try:
            found.append(state_apps.get_model(label))
        except (LookupError, ValueError):
            notes.append(f"{label} is not in the applied migrations: not counted")
    return found, notes


def natural_keys(settings: KitSettings, state_apps: Apps) -> tuple[list[NaturalKey], list[str]]:
    """DUPLICATE_KEYS resolved on the applied state; what cannot be (not migrated yet) becomes a note."""
    found, notes = [], []
    for label, names in settings.duplicate_keys.items():
        try:
            model = state_apps.get_model(label)
            fields = [model._meta.get_field(n) for n in names]
        except (LookupError, ValueError, FieldDoesNotExist) as exc:
            notes.append(f"DUPLICATE_KEYS of {label}: not checked ({exc})")
            continue
        columns = tuple(str(getattr(f, "column", "") or "") for f in fields)
        if not all(columns) or not columns:
            notes.append(f"DUPLICATE_KEYS of {label}: not checked (a field without a column)")
            continue
        loose_names = set(settings.normalized_keys.get(label, ()))
        loose = tuple(c for f, c in zip(fields, columns, strict=True) if f.name in loose_names)
        found.append(NaturalKey(model, model._meta.label, tuple(names), columns, loose))
    return found, notes
