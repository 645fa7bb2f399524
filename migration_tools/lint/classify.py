"""What one SQL statement does, read from its pglast node: pure functions, no database.

`classify(node, version)` returns the statement's effects (each a table, the lock taken on it,
what happens to the table under the lock, and the catalogue rule it matches, if any) and the
facts the plan-level analysis follows: tables created and renamed, column changes, a
lock_timeout set, and whether it cannot run inside a transaction block. ALTER TABLE has its
own module (`lint.alter_table`).
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import ConstrType as Ct
from pglast.enums import ObjectType, VariableSetKind

from migration_tools.lint import catalogue
from migration_tools.lint.alter_table import alter_table
from migration_tools.lint.effects import (
    AE,
    SHARE,
    SRE,
    SUE,
    Classified,
    ColumnChange,
    Effect,
    dotted,
    relname,
    walk,
)

__all__ = ["Classified", "ColumnChange", "Effect", "classify"]


def classify(node: Any, version: int | None = None) -> Classified:
    """The effects and facts of one parsed statement (a RawStmt's `.stmt`)."""
    out = Classified()
    handler = _HANDLERS.get(type(node).__name__)
    if handler is not None:
        handler(node, out, version)
    return out


def _index(node: Any, out: Classified, version: int | None) -> None:
    table, detail = relname(node.relation), {"index": node.idxname or ""}
    if node.idxname:
        schema = node.relation.schemaname
        out.indexes.append((f"{schema}.{node.idxname}" if schema else node.idxname, table))
    if node.concurrent:
        out.no_transaction = True
        out.effects.append(Effect(None, table, SUE, "scan", detail))
        _pg14_bug(out, table, version)
    else:
        out.effects.append(Effect("create-index", table, SHARE, "scan", detail))


def _pg14_bug(out: Classified, table: str, version: int | None) -> None:
    if version is not None and 140000 <= version < 140004:
        out.effects.append(Effect("concurrent-pg14-bug", table, SUE, "scan"))


def _drop(node: Any, out: Classified, version: int | None) -> None:
    for names in node.objects or ():
        name = dotted(names) if isinstance(names, (list, tuple)) else ""
        if node.removeType == ObjectType.OBJECT_INDEX:
            if node.concurrent:
                out.no_transaction = True
            out.effects.append(Effect(None if node.concurrent else "drop-index", name,
                                      SUE if node.concurrent else AE, detail={"index": name}))
        elif node.removeType == ObjectType.OBJECT_TABLE:
            out.effects.append(Effect("drop-table", name, AE))


def _reindex(node: Any, out: Classified, version: int | None) -> None:
    name = relname(node.relation) if node.relation is not None else (node.name or "")
    if any(getattr(p, "defname", "") == "concurrently" for p in node.params or ()):
        out.no_transaction = True
        out.effects.append(Effect(None, name, SUE, "scan"))
        _pg14_bug(out, name, version)
    else:
        out.effects.append(Effect("reindex", name, SHARE, "scan", {"index": name}))


def _rename(node: Any, out: Classified, version: int | None) -> None:
    table = relname(node.relation)
    if node.renameType == ObjectType.OBJECT_COLUMN:
        out.effects.append(Effect("rename-column", table, AE,
                                  detail={"column": node.subname or "", "new_name": node.newname or ""}))
    elif node.renameType == ObjectType.OBJECT_TABLE:
        out.effects.append(Effect("rename-table", table, AE, detail={"new_name": node.newname or ""}))
        schema = node.relation.schemaname if node.relation is not None else None
        out.renames.append((table, f"{schema}.{node.newname}" if schema else node.newname or ""))
    elif node.renameType == ObjectType.OBJECT_INDEX:
        out.effects.append(Effect(None, table, SUE, detail={"index": table}))
    elif node.renameType == ObjectType.OBJECT_TABCONSTRAINT:
        out.effects.append(Effect(None, table, AE))


def _vacuum(node: Any, out: Classified, version: int | None) -> None:
    full = any(getattr(o, "defname", "") == "full" for o in node.options or ())
    if node.is_vacuumcmd:
        out.no_transaction = True
    for rel in node.rels or ():
        table = relname(rel.relation)
        out.effects.append(Effect("vacuum-full", table, AE, "rewrite") if full
                           else Effect(None, table, SUE, "scan"))


def _cluster(node: Any, out: Classified, version: int | None) -> None:
    out.effects.append(Effect("cluster", relname(node.relation) or "(every clustered table)", AE, "rewrite"))


def _lock(node: Any, out: Classified, version: int | None) -> None:
    mode = catalogue.lock_mode(node.mode)
    for rel in node.relations or ():
        out.effects.append(Effect("lock-table", relname(rel), mode, detail={"lock": mode}))


def _set(node: Any, out: Classified, version: int | None) -> None:
    if (node.name or "").lower() != "lock_timeout":
        return
    if node.kind == VariableSetKind.VAR_SET_VALUE and node.args:
        value = getattr(node.args[0], "val", None)
        text = str(getattr(value, "sval", None) or getattr(value, "ival", "0"))
        out.lock_timeout = (text, bool(node.is_local))
    else:
        out.lock_timeout = ("", bool(node.is_local))


def _create(node: Any, out: Classified, version: int | None) -> None:
    table = relname(node.relation)
    out.creates.append(table)
    for con in walk(node.tableElts):
        if isinstance(con, ast.Constraint) and con.contype == Ct.CONSTR_FOREIGN:
            ref = relname(con.pktable)
            out.effects.append(Effect(None, ref, SRE, detail={"constraint": con.conname or ""}))


def _create_as(node: Any, out: Classified, version: int | None) -> None:
    out.creates.append(relname(node.into.rel))


def _dml(node: Any, out: Classified, version: int | None) -> None:
    out.effects.append(Effect("data-change", relname(node.relation), "ROW EXCLUSIVE", "scan"))


def _trigger(node: Any, out: Classified, version: int | None) -> None:
    out.effects.append(Effect(None, relname(node.relation), SRE))


_HANDLERS = {
    "IndexStmt": _index, "DropStmt": _drop, "ReindexStmt": _reindex, "AlterTableStmt": alter_table,
    "RenameStmt": _rename, "VacuumStmt": _vacuum, "ClusterStmt": _cluster, "LockStmt": _lock,
    "VariableSetStmt": _set, "CreateStmt": _create, "CreateTableAsStmt": _create_as,
    "InsertStmt": _dml, "UpdateStmt": _dml, "DeleteStmt": _dml, "CreateTrigStmt": _trigger,
}
