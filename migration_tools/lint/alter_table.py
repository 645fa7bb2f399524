"""ALTER TABLE, subcommand by subcommand: ADD COLUMN (defaults, inline constraints), ADD
CONSTRAINT (NOT VALID or not), SET NOT NULL, defaults, TYPE, DROP COLUMN. Pure."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import AlterTableType as At
from pglast.enums import ConstrType as Ct
from pglast.enums import ObjectType

from migration_tools.lint.effects import (
    AE,
    SRE,
    SUE,
    Classified,
    ColumnChange,
    Effect,
    deparse,
    relname,
    volatility,
)
from migration_tools.lint.types import spec

# ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE.
SUBCOMMAND_LOCKS = {
    At.AT_ValidateConstraint: SUE, At.AT_SetStatistics: SUE, At.AT_ClusterOn: SUE,
    At.AT_DropCluster: SUE, At.AT_SetRelOptions: SUE, At.AT_ResetRelOptions: SUE,
    At.AT_AttachPartition: SUE, At.AT_EnableTrig: SRE, At.AT_DisableTrig: SRE,
    At.AT_EnableTrigAll: SRE, At.AT_DisableTrigAll: SRE, At.AT_EnableTrigUser: SRE,
    At.AT_DisableTrigUser: SRE,
}


def alter_table(node: Any, out: Classified, version: int | None) -> None:
    if node.objtype != ObjectType.OBJECT_TABLE:
        return
    table = relname(node.relation)
    for cmd in node.cmds or ():
        _subcommand(table, cmd, out, version)


def _subcommand(table: str, cmd: Any, out: Classified, version: int | None) -> None:
    kind, column = cmd.subtype, cmd.name or ""
    detail = {"column": column}
    if kind == At.AT_AddColumn:
        _add_column(table, cmd.def_, out, version)
    elif kind == At.AT_AddConstraint:
        add_constraint(table, cmd.def_, out, version)
    elif kind == At.AT_SetNotNull:
        out.effects.append(Effect("set-not-null", table, AE, "scan", detail))
        out.columns.append(ColumnChange(table, column, "set_not_null"))
    elif kind == At.AT_DropNotNull:
        out.effects.append(Effect(None, table, AE, detail=detail))
        out.columns.append(ColumnChange(table, column, "drop_not_null"))
    elif kind == At.AT_ColumnDefault:
        out.effects.append(Effect(None, table, AE, detail=detail))
        out.columns.append(ColumnChange(table, column, "set_default" if cmd.def_ else "drop_default"))
    elif kind == At.AT_AlterColumnType:
        new = spec(cmd.def_.typeName)
        out.effects.append(Effect("alter-type", table, AE, "rewrite", detail | {"new_type": str(new)}))
        out.columns.append(ColumnChange(table, column, "type", type=new))
    elif kind == At.AT_DropColumn:
        out.effects.append(Effect("drop-column", table, AE, detail=detail))
        out.columns.append(ColumnChange(table, column, "drop"))
    elif kind == At.AT_ValidateConstraint:
        out.effects.append(Effect(None, table, SUE, "scan", {"constraint": column}))
    else:
        out.effects.append(Effect(None, table, SUBCOMMAND_LOCKS.get(kind, AE), detail=detail))


SERIALS = ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2")


def _fills_every_row(con: Any) -> bool:
    """An identity, or a stored generated column (PostgreSQL 18's virtual ones compute on read)."""
    if con.contype == Ct.CONSTR_IDENTITY:
        return True
    return con.contype == Ct.CONSTR_GENERATED and getattr(con, "generated_kind", "s") != "v"


def _add_column(table: str, coldef: Any, out: Classified, version: int | None) -> None:
    column = coldef.colname or ""
    detail = {"column": column}
    constraints = list(coldef.constraints or ())
    default = next((c.raw_expr for c in constraints if c.contype == Ct.CONSTR_DEFAULT), None)
    not_null = bool(coldef.is_not_null) or any(c.contype in (Ct.CONSTR_NOTNULL, Ct.CONSTR_PRIMARY)
                                               for c in constraints)
    type_spec = spec(coldef.typeName)
    fills = type_spec.name in SERIALS or any(_fills_every_row(c) for c in constraints)
    base = "none"
    if fills:
        out.effects.append(Effect("add-column-rewrite", table, AE, "rewrite", detail))
        base = "rewrite"
    elif default is not None and volatility(default) == "volatile":
        out.effects.append(Effect("add-column-volatile-default", table, AE, "rewrite",
                                  detail | {"default": deparse(default)}))
        base = "rewrite"
    elif default is not None and version is not None and version < 110000:
        out.effects.append(Effect("add-column-default-pre11", table, AE, "rewrite", detail))
        base = "rewrite"
    if base == "none":
        out.effects.append(Effect(None, table, AE, detail=detail))
    out.columns.append(ColumnChange(table, column, "add", not_null=not_null, default=default is not None,
                                    type=type_spec))
    for constraint in constraints:
        if constraint.contype in (Ct.CONSTR_FOREIGN, Ct.CONSTR_CHECK, Ct.CONSTR_UNIQUE,
                                  Ct.CONSTR_PRIMARY, Ct.CONSTR_EXCLUSION):
            add_constraint(table, constraint, out, version, column=column, lock=AE)


def add_constraint(table: str, con: Any, out: Classified, version: int | None, *,
                    column: str = "", lock: str = "") -> None:
    """A table constraint (ADD CONSTRAINT), or a column's inline one (ADD COLUMN ... REFERENCES)."""
    name = con.conname or ""
    keys = [k.sval for k in con.keys or () if isinstance(k, ast.String)]
    detail = {"constraint": name, "column": column or ", ".join(keys)}
    not_valid = bool(con.skip_validation)
    if con.contype == Ct.CONSTR_FOREIGN:
        ref = relname(con.pktable)
        out.effects.append(Effect(None if not_valid else "add-foreign-key", table, lock or SRE,
                                  "none" if not_valid else "scan", detail | {"ref_table": ref}))
        out.effects.append(Effect(None, ref, SRE, detail={"constraint": name}))
    elif con.contype == Ct.CONSTR_CHECK:
        out.effects.append(Effect(None if not_valid else "add-check", table, AE,
                                  "none" if not_valid else "scan", detail))
    elif con.contype in (Ct.CONSTR_UNIQUE, Ct.CONSTR_PRIMARY):
        using_index = bool(con.indexname)
        out.effects.append(Effect(None if using_index else "add-unique", table, AE,
                                  "none" if using_index else "scan", detail))
    elif con.contype == Ct.CONSTR_EXCLUSION:
        out.effects.append(Effect("add-exclude", table, AE, "scan", detail))
    elif con.contype == Ct.CONSTR_NOTNULL:  # PostgreSQL 18: ADD CONSTRAINT name NOT NULL col [NOT VALID]
        if not_valid and version is not None and version < 180000:
            out.effects.append(Effect("needs-pg18", table, AE, detail=detail))
        elif not_valid:
            out.effects.append(Effect(None, table, AE, detail=detail))
        else:
            out.effects.append(Effect("set-not-null", table, AE, "scan", detail))
            out.columns.extend(ColumnChange(table, key, "set_not_null") for key in keys)


