"""Every relation verify-data checks, read from the models of the applied migrations' state.

Foreign keys and one-to-ones come from each model's *local* fields: with multi-table inheritance
each table is checked for its own columns, and the parent link is a relation like any other.
Auto-created many-to-many tables are checked on both sides (an explicit through model is a model
with two foreign keys). Generic foreign keys are not part of the migrations' state: they are found
on the project's real models, their columns on the state's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps.registry import Apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

INTEGER_TYPES = frozenset({
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
    "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField",
})

Model = type[models.Model]


@dataclass(frozen=True)
class Relation:
    """Rows of `db_table`.`column` must match a row of `target_table`.`target_column`."""

    model: str  # the model declaring the relation (app_label.ModelName)
    field: str
    kind: str  # foreign key | one-to-one | parent link | many-to-many | generic
    db_table: str  # Django's db_table of the table holding the column
    column: str
    pk_column: str  # the rows' primary key, for examples ('' when the table has no single-column key)
    target: str
    target_table: str
    target_column: str
    db_constraint: bool = True
    ct_column: str = ""  # generic relations: the content type column, and the one content type checked
    content_type: int | None = None
    direct: bool = True  # generic relations: object id and target key compare without a cast to text


@dataclass(frozen=True)
class GenericSpec:
    """A GenericForeignKey: before it becomes relations, the content types its rows use are needed."""

    model: str
    field: str
    db_table: str
    ct_column: str
    id_column: str
    id_integer: bool
    pk_column: str
    ct_table: str


def checked_models(state_apps: Apps) -> list[Model]:
    """Every concrete model whose table the migrations manage."""
    return [
        m for m in state_apps.get_models()
        if m._meta.managed and not m._meta.proxy and not m._meta.swapped
    ]


def auto_through_models(model: Model) -> list[tuple[str, Model]]:
    """(field name, through model) of the model's auto-created many-to-many tables."""
    found = []
    for f in model._meta.local_many_to_many:
        through = f.remote_field.through
        if isinstance(through, type) and through._meta.auto_created and through._meta.managed:
            found.append((f.name, through))
    return found


def pk_column(model: Model) -> str:
    return str(getattr(model._meta.pk, "column", None) or "")


def _usable_target(target: Any) -> bool:
    return isinstance(target, type) and not target._meta.swapped and not target._meta.proxy


def _kind(f: models.Field[Any, Any]) -> str:
    if f.remote_field.parent_link:
        return "parent link"
    return "one-to-one" if f.one_to_one else "foreign key"


def model_relations(model: Model) -> list[Relation]:
    """The model's own foreign keys and one-to-ones, then both sides of its auto-created m2m tables."""
    opts = model._meta
    found = []
    for f in opts.local_fields:
        if not (f.is_relation and (f.many_to_one or f.one_to_one)) or not f.column:
            continue
        target = f.related_model
        if not _usable_target(target):
            continue
        found.append(Relation(
            opts.label, f.name, _kind(f), opts.db_table, f.column, pk_column(model),
            target._meta.label, target._meta.db_table, f.target_field.column,
            db_constraint=bool(getattr(f, "db_constraint", True)),
        ))
    for name, through in auto_through_models(model):
        for side in through._meta.local_fields:
            if not (side.is_relation and side.many_to_one and side.column):
                continue
            if not _usable_target(side.related_model):
                continue
            found.append(Relation(
                opts.label, name, "many-to-many", through._meta.db_table, side.column, pk_column(through),
                side.related_model._meta.label, side.related_model._meta.db_table, side.target_field.column,
                db_constraint=bool(getattr(side, "db_constraint", True)),
            ))
    return found


def generic_specs(state_apps: Apps, real_apps: Apps) -> list[GenericSpec]:
    """The project's GenericForeignKeys whose two columns the applied migrations define."""
    found = []
    for real in real_apps.get_models():
        for private in real._meta.private_fields:
            if not (hasattr(private, "ct_field") and hasattr(private, "fk_field")):
                continue
            try:
                state = state_apps.get_model(real._meta.label)
                ct = state._meta.get_field(private.ct_field)
                object_id = state._meta.get_field(private.fk_field)
            except (LookupError, FieldDoesNotExist):
                continue
            if not state._meta.managed or not isinstance(ct.related_model, type):
                continue
            found.append(GenericSpec(
                state._meta.label, private.name, state._meta.db_table, ct.column, object_id.column,
                object_id.get_internal_type() in INTEGER_TYPES, pk_column(state),
                ct.related_model._meta.db_table,
            ))
    return found


def generic_relation(spec: GenericSpec, content_type: int, target: Model | None, stale: str) -> Relation:
    """One relation per content type a GenericForeignKey's rows use.

    A content type whose model the applied migrations do not define (`target` None) has no
    table to point at: every row using it is an orphan (`target_table` empty).
    """
    if target is None:
        return Relation(spec.model, spec.field, "generic", spec.db_table, spec.id_column, spec.pk_column,
                        f"{stale} (no such model)", "", "", db_constraint=False,
                        ct_column=spec.ct_column, content_type=content_type)
    direct = spec.id_integer and target._meta.pk.get_internal_type() in INTEGER_TYPES
    return Relation(
        spec.model, spec.field, "generic", spec.db_table, spec.id_column, spec.pk_column,
        target._meta.label, target._meta.db_table, target._meta.pk.column, db_constraint=False,
        ct_column=spec.ct_column, content_type=content_type, direct=direct,
    )


def integer_key(model: Model) -> bool:
    pk = model._meta.pk
    return pk is not None and pk.get_internal_type() in INTEGER_TYPES
