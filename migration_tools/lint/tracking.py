"""What the plan carries from one statement to the next: the transaction each runs in, the
locks already held there, the tables it created or renamed, the lock_timeout in force, and
each touched column's state. Pure bookkeeping for `lint.analyse`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migration_tools.lint import catalogue, findings, types
from migration_tools.lint.classify import ColumnChange
from migration_tools.lint.findings import Finding
from migration_tools.lint.sizes import Catalog
from migration_tools.lint.statement import Statement

AE = "ACCESS EXCLUSIVE"
PLAN = "plan"


def label(statement: Statement) -> str:
    text = " ".join(statement.text.split())
    return f"{statement.migration.label} ({text[:48]}{'...' if len(text) > 48 else ''})"


def timeout_set(value: str) -> bool:
    """True for a lock_timeout that limits the wait ("2s", "500ms", "1000"); False for 0 or unset."""
    return any(ch in "123456789" for ch in value)


def _where(statement: Statement) -> dict[str, Any]:
    return {"migration": statement.migration.label, "operation": statement.operation,
            "statement": statement.text, "position": statement.position}


class Plan:
    """Transactions, held locks, created and renamed tables, and lock_timeout across the plan."""

    def __init__(self, catalog: Catalog, *, one_transaction: bool) -> None:
        self.online = catalog.online
        self.one_transaction = one_transaction
        self._created: dict[str, set[str]] = {}
        self._renamed: dict[str, str] = {}  # new name -> old name
        self._index_table: dict[str, str] = {}  # index created in the plan -> its table
        self.catalog = catalog
        self._held: dict[str, dict[str, tuple[str, str]]] = {}
        self._exclusive: dict[str, list[str]] = {}
        self._exclusive_at: dict[str, Statement] = {}
        self._session_timeout = catalog.lock_timeout
        self._local_timeout: dict[str, str] = {}
        self._untimed: list[tuple[Statement, str, str]] = []  # (statement, table, mode)
        self._autocommits = 0

    def enter(self, statement: Statement) -> str:
        """The transaction the statement runs in."""
        if self.one_transaction:
            return PLAN
        if statement.migration.atomic:
            return statement.migration.label
        self._autocommits += 1
        return f"{statement.migration.label}#{self._autocommits}"

    def _creation_scope(self, migration: str) -> str:
        # Online the catalog tells what exists, so a table created earlier in the plan is new;
        # offline every migration is judged as if the ones before it were released.
        return PLAN if self.online else migration

    def created(self, table: str, migration: str) -> None:
        self._created.setdefault(self._creation_scope(migration), set()).add(table)

    def is_new(self, table: str, migration: str) -> bool:
        return table in self._created.get(self._creation_scope(migration), set())

    def renamed(self, old: str, new: str, migration: str) -> None:
        if self.is_new(old, migration):
            self.created(new, migration)
        else:
            self._renamed[new] = self.original_name(old)

    def index_created(self, index: str, table: str) -> None:
        self._index_table[index] = table

    def resolve(self, name: str) -> str:
        """The table a statement's relation stands for: an index's table, a renamed table's old name."""
        name = self.original_name(self._index_table.get(name, name))
        info = self.catalog.table(name) if self.online else None
        return info.name if info is not None and info.via_index else name

    def original_name(self, name: str) -> str:
        seen = set()
        while name in self._renamed and name not in seen:
            seen.add(name)
            name = self._renamed[name]
        return name

    def set_lock_timeout(self, scope: str, value: str, local: bool) -> None:
        if local:
            self._local_timeout[scope] = value
        else:
            self._session_timeout = value

    def _timed(self, scope: str) -> bool:
        return timeout_set(self._local_timeout.get(scope, self._session_timeout))

    def hold(self, scope: str, table: str, mode: str, statement: Statement) -> tuple[str, str]:
        """Take `mode` on `table`; returns the strongest mode now held there and who took it."""
        key = self.resolve(table)
        held = self._held.setdefault(scope, {})
        prior = held.get(key)
        if prior is not None and catalogue.strength(prior[0]) >= catalogue.strength(mode):
            effective, by = prior
        else:
            effective, by = mode, label(statement)
            held[key] = (mode, by)
        if effective == AE:
            tables = self._exclusive.setdefault(scope, [])
            if key not in tables:
                tables.append(key)
                if len(tables) == 2:
                    self._exclusive_at[scope] = statement
        if catalogue.strength(mode) >= 5 and not self._timed(scope):
            self._untimed.append((statement, key, mode))
        return effective, by

    def findings(self, version: int | None) -> list[Finding]:
        out = []
        for scope, statement in self._exclusive_at.items():
            tables = self._exclusive[scope]
            out.append(findings.make(
                "multi-table-access-exclusive", version=version, **_where(statement),
                detail={"tables": ", ".join(tables),
                        "scope": "whole plan" if scope == PLAN else "migration"}))
        if self._untimed:
            tables = list(dict.fromkeys(t for _, t, _ in self._untimed))
            shown = ", ".join(tables[:4]) + (f" and {len(tables) - 4} more" if len(tables) > 4 else "")
            count = len({id(s) for s, _, _ in self._untimed})
            strongest = max((mode for _, _, mode in self._untimed), key=catalogue.strength)
            out.append(findings.make(
                "no-lock-timeout", version=version, lock=strongest, **_where(self._untimed[0][0]),
                detail={"count": str(count), "tables": shown,
                        "timeout": f"{self._session_timeout or '0'} (no limit)"}))
        return out


@dataclass
class ColumnState:
    type: types.TypeSpec | None
    not_null: bool | None
    default: bool | None
    added: Statement | None = None
    culprit: Statement | None = None  # the last statement that made it NOT NULL or dropped its default
    dropped_default: bool = False
    dropped: bool = False


class Columns:
    """Each touched column from its catalog state (online) through the plan's changes."""

    def __init__(self, catalog: Catalog, declared: dict[tuple[str, str], str] | None = None) -> None:
        self.catalog = catalog
        self.declared = declared or {}  # Django's type of a column before its first AlterField
        self._state: dict[tuple[str, str], ColumnState] = {}

    def _get(self, table: str, column: str) -> ColumnState:
        key = (table, column)
        if key not in self._state:
            info = self.catalog.columns.get(key) or self.catalog.columns.get((table.split(".")[-1], column))
            declared = self.declared.get(key)
            self._state[key] = (ColumnState(types.parse_type(info.type), info.not_null, info.has_default)
                                if info else
                                ColumnState(types.parse_type(declared) if declared else None, None, None))
        return self._state[key]

    def type_of(self, table: str, column: str) -> types.TypeSpec | None:
        return self._get(table, column).type

    def apply(self, change: ColumnChange, statement: Statement) -> None:
        if change.kind == "add":
            self._state[(change.table, change.column)] = ColumnState(
                change.type, change.not_null, change.default, added=statement,
                culprit=statement if change.not_null else None)
            return
        state = self._get(change.table, change.column)
        if change.kind == "set_default":
            state.default = True
        elif change.kind == "drop_default":
            state.default, state.dropped_default = False, True
            state.culprit = statement
        elif change.kind == "set_not_null":
            state.not_null, state.culprit = True, statement
        elif change.kind == "drop_not_null":
            state.not_null = False
        elif change.kind == "type":
            state.type = change.type
        elif change.kind == "drop":
            state.dropped = True

    def findings(self, version: int | None) -> list[Finding]:
        out = []
        for (table, column), state in self._state.items():
            if state.dropped or state.culprit is None:
                continue
            detail = {"column": column}
            if state.not_null and not state.default:
                out.append(findings.make("not-null-without-default", table=table, detail=detail,
                                         version=version, **_where(state.culprit)))
            elif state.dropped_default and state.added is None:
                out.append(findings.make("drop-default", table=table, detail=detail, version=version,
                                         **_where(state.culprit)))
        return out
