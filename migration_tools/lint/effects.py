"""The vocabulary of the statement classification: effects, column changes, and the node
helpers every classifier uses. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast

from migration_tools.lint.types import TypeSpec

AE, SRE, SHARE, SUE = "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE", "SHARE UPDATE EXCLUSIVE"

# Defaults whose value differs per row: adding a column with one rewrites the table.
VOLATILE = frozenset({
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "uuidv4", "uuidv7", "clock_timestamp", "timeofday", "nextval", "gen_random_bytes", "setseed",
    "random_normal", "txid_current",
})
# Stable or immutable functions a default commonly calls: evaluated once, stored without a rewrite.
NOT_VOLATILE = frozenset({
    "now", "statement_timestamp", "transaction_timestamp", "current_timestamp", "current_date",
    "lower", "upper", "concat", "length", "to_jsonb", "jsonb_build_object", "json_build_object",
    "jsonb_build_array", "json_build_array", "make_interval", "to_timestamp", "to_date", "abs",
    "round", "trim", "btrim", "replace", "substr", "left", "right",
})


@dataclass(frozen=True)
class Effect:
    rule: str | None  # a catalogue id, or None: a lock the plan-level analysis still weighs
    table: str  # as written: "name" or "schema.name"; an index name for index statements
    lock: str
    work: str = "none"
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnChange:
    table: str
    column: str
    kind: str  # add, set_default, drop_default, set_not_null, drop_not_null, type, drop
    not_null: bool = False
    default: bool = False
    type: TypeSpec | None = None


@dataclass
class Classified:
    effects: list[Effect] = field(default_factory=list)
    creates: list[str] = field(default_factory=list)
    renames: list[tuple[str, str]] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=list)  # (index, table) created
    columns: list[ColumnChange] = field(default_factory=list)
    lock_timeout: tuple[str, bool] | None = None  # (value, is_local); value "0" or "" = none
    no_transaction: bool = False  # CONCURRENTLY, VACUUM: refused inside a transaction block


def walk(node: Any) -> Iterator[Any]:
    """Every pglast node under `node`, itself included."""
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from walk(getattr(node, name, None))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)


def relname(range_var: Any) -> str:
    if range_var is None:
        return ""
    return f"{range_var.schemaname}.{range_var.relname}" if range_var.schemaname else range_var.relname


def dotted(names: Any) -> str:
    return ".".join(n.sval for n in names if isinstance(n, ast.String))


def volatility(expr: Any) -> str:
    """"volatile", "stable" or "" (a constant) for a default expression."""
    found = ""
    for node in walk(expr):
        if isinstance(node, ast.FuncCall):
            name = dotted(node.funcname).split(".")[-1].lower()
            # Unknown functions count as volatile: the rewrite is the risk worth a look.
            if name in VOLATILE or name not in NOT_VOLATILE:
                return "volatile"
            found = "stable"
        elif isinstance(node, (ast.SQLValueFunction, ast.SubLink)):
            found = "stable"
    return found


def deparse(node: Any) -> str:
    from pglast.stream import RawStream

    try:
        return str(RawStream()(node))
    except Exception:  # only a label for the finding
        return "an expression"


