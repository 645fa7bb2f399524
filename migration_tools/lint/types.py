"""Column type changes: binary-compatible (no rewrite), widening, or narrowing.

Types are compared as pglast reads them (`varchar(64)` and `character varying(64)` are the
same `TypeSpec`), so a type from the catalog (`format_type`), from Django and from a statement
compare alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError

# Integer and float families, narrowest first: a move to the right widens.
_WIDTHS = {"int2": 0, "int4": 1, "int8": 2, "float4": 0, "float8": 1}
_FAMILY = {"int2": "int", "int4": "int", "int8": "int", "float4": "float", "float8": "float",
           "varchar": "text", "text": "text", "numeric": "numeric",
           "timestamp": "timestamp", "timestamptz": "timestamp"}
_ALIASES = {"serial": "int4", "bigserial": "int8", "smallserial": "int2", "integer": "int4",
            "int": "int4", "bigint": "int8", "smallint": "int2", "real": "float4",
            "decimal": "numeric", "bool": "bool", "boolean": "bool"}


@dataclass(frozen=True)
class TypeSpec:
    name: str
    mods: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.name + (f"({','.join(map(str, self.mods))})" if self.mods else "")


@dataclass(frozen=True)
class TypeChange:
    rewrite: bool  # the table is rewritten (and its indexes rebuilt)
    narrowing: bool  # values the old type accepts may not fit the new one
    known: bool  # False when the old type is unknown (then assumed to rewrite)


def spec(type_name: Any) -> TypeSpec:
    """A TypeSpec of a pglast TypeName node."""
    names = [n.sval for n in type_name.names or () if isinstance(n, ast.String)]
    name = names[-1] if names else "?"
    name = _ALIASES.get(name, name)
    mods: list[int] = []
    for mod in type_name.typmods or ():
        value = getattr(getattr(mod, "val", None), "ival", None)
        if isinstance(value, int):
            mods.append(value)
    if getattr(type_name, "arrayBounds", None):
        name += "[]"
    return TypeSpec(name, tuple(mods))


def parse_type(text: str) -> TypeSpec | None:
    """A TypeSpec of a type as text (`character varying(64)`), through the parser."""
    try:
        stmt = parse_sql(f"SELECT NULL::{text}")[0].stmt
        return spec(stmt.targetList[0].val.typeName)
    except ParseError:  # an odd type name from the catalog: unknown, not an error
        return None


def compare(old: TypeSpec | None, new: TypeSpec) -> TypeChange:
    """What ALTER COLUMN ... TYPE does, from the old type to the new one."""
    if old is None:
        return TypeChange(rewrite=True, narrowing=False, known=False)
    if old == new:
        return TypeChange(rewrite=False, narrowing=False, known=True)
    family_old, family_new = _FAMILY.get(old.name), _FAMILY.get(new.name)
    if family_old is None or family_old != family_new:
        return TypeChange(rewrite=True, narrowing=True, known=True)
    if family_old == "text":
        return _text_change(old, new)
    if family_old == "numeric":
        return _numeric_change(old, new)
    if family_old == "timestamp":
        return TypeChange(rewrite=True, narrowing=False, known=True)
    narrowing = _WIDTHS[new.name] < _WIDTHS[old.name]
    return TypeChange(rewrite=True, narrowing=narrowing, known=True)


def _length(type_spec: TypeSpec) -> int | None:
    """The length limit of a varchar, None for text or an unbounded varchar."""
    return type_spec.mods[0] if type_spec.name == "varchar" and type_spec.mods else None


def _text_change(old: TypeSpec, new: TypeSpec) -> TypeChange:
    before, after = _length(old), _length(new)
    if after is None:  # to text or unbounded varchar: binary compatible
        return TypeChange(rewrite=False, narrowing=False, known=True)
    if before is not None and after >= before:  # varchar widening: no rewrite since 9.2
        return TypeChange(rewrite=False, narrowing=False, known=True)
    return TypeChange(rewrite=True, narrowing=True, known=True)


def _numeric_change(old: TypeSpec, new: TypeSpec) -> TypeChange:
    if not new.mods:  # to unconstrained numeric
        return TypeChange(rewrite=False, narrowing=False, known=True)
    if not old.mods:
        return TypeChange(rewrite=True, narrowing=True, known=True)
    old_scale = old.mods[1] if len(old.mods) > 1 else 0
    new_scale = new.mods[1] if len(new.mods) > 1 else 0
    if new_scale == old_scale and new.mods[0] >= old.mods[0]:
        return TypeChange(rewrite=False, narrowing=False, known=True)
    narrowing = new.mods[0] - new_scale < old.mods[0] - old_scale or new_scale < old_scale
    return TypeChange(rewrite=True, narrowing=narrowing, known=True)
