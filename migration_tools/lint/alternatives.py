"""The safe alternative of a finding as concrete SQL, built from the statement's own node.

Each builder takes the parsed statement, the finding's detail and the server version, and
returns SQL (statements separated by "; ") or "" when it has nothing better than the
catalogue's recipe. Pure: the node is parsed again from the statement text, never shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import AlterTableType as At
from pglast.enums import ConstrType as Ct
from pglast.stream import RawStream, maybe_double_quote_name

Builder = Callable[[Any, dict[str, str], "int | None"], str]
MAX_IDENTIFIER = 63


def q(name: str) -> str:
    """An identifier as SQL; "schema.name" quotes each part."""
    return ".".join(maybe_double_quote_name(part) for part in name.split("."))


def sql_of(node: Any) -> str:
    return str(RawStream()(node))


def _name(*parts: str) -> str:
    return "_".join(p for p in parts if p)[:MAX_IDENTIFIER]


def _create_index(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    stmt.concurrent = True
    return sql_of(stmt)


def _drop_index(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    stmt.concurrent = True
    stmt.behavior = 0  # DROP INDEX CONCURRENTLY takes neither CASCADE nor a list
    return "; ".join(f"DROP INDEX CONCURRENTLY IF EXISTS {q('.'.join(n.sval for n in names))}"
                     for names in stmt.objects)


def _reindex(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    stmt.params = (*(stmt.params or ()), ast.DefElem(defname="concurrently"))
    return sql_of(stmt)


def _cmd(stmt: Any, subtype: int) -> Any:
    return next((c for c in stmt.cmds if c.subtype == subtype), None)


def _validate(table: str, constraint: str) -> str:
    return f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {q(constraint)}"


def _table(stmt: Any) -> str:
    rel = stmt.relation
    return f"{rel.schemaname}.{rel.relname}" if rel.schemaname else rel.relname


def _foreign_key(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    table = _table(stmt)
    add_column = _cmd(stmt, At.AT_AddColumn)
    if add_column is not None:  # ADD COLUMN ... REFERENCES: the column first, the constraint apart
        coldef = add_column.def_
        inline = list(coldef.constraints or ())
        fk = next(c for c in inline if c.contype == Ct.CONSTR_FOREIGN)
        fk.deferrable = any(c.contype == Ct.CONSTR_ATTR_DEFERRABLE for c in inline)
        fk.initdeferred = any(c.contype == Ct.CONSTR_ATTR_DEFERRED for c in inline)
        fk.fk_attrs = (ast.String(sval=coldef.colname),)
        fk.conname = fk.conname or _name(table.split(".")[-1], coldef.colname, "fk")
        coldef.constraints = tuple(c for c in inline if c.contype not in (
            Ct.CONSTR_FOREIGN, Ct.CONSTR_ATTR_DEFERRABLE, Ct.CONSTR_ATTR_DEFERRED,
            Ct.CONSTR_ATTR_IMMEDIATE, Ct.CONSTR_ATTR_NOT_DEFERRABLE)) or None
        stmt.cmds = (add_column,)
        first = sql_of(stmt)
        constraint = fk
    else:
        cmd = _cmd(stmt, At.AT_AddConstraint)
        constraint, first = cmd.def_, ""
        stmt.cmds = (cmd,)
    constraint.skip_validation, constraint.initially_valid = True, False
    stmt.cmds = (ast.AlterTableCmd(subtype=At.AT_AddConstraint, def_=constraint, behavior=0),)
    steps = [first, sql_of(stmt), _validate(table, constraint.conname)]
    return "; ".join(s for s in steps if s)


def _check(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    cmd = _cmd(stmt, At.AT_AddConstraint)
    cmd.def_.skip_validation, cmd.def_.initially_valid = True, False
    stmt.cmds = (cmd,)
    return f"{sql_of(stmt)}; {_validate(_table(stmt), cmd.def_.conname)}"


def _not_null(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    table, column = _table(stmt), detail.get("column", "")
    name = _name(table.split(".")[-1], column, "not_null")
    if version is not None and version >= 180000:
        return (f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} NOT NULL {q(column)} NOT VALID; "
                f"{_validate(table, name)}")
    return (f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} CHECK ({q(column)} IS NOT NULL) NOT VALID; "
            f"{_validate(table, name)}; ALTER TABLE {q(table)} ALTER COLUMN {q(column)} SET NOT NULL; "
            f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}"
            + ("  -- on PostgreSQL 18: ADD CONSTRAINT ... NOT NULL ... NOT VALID, then VALIDATE"
               if version is None else ""))


def _unique(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    table = _table(stmt)
    cmd = _cmd(stmt, At.AT_AddConstraint)
    if cmd is None:
        return ""
    con = cmd.def_
    keys = [k.sval for k in con.keys or () if isinstance(k, ast.String)]
    if not keys:
        return ""
    name = con.conname or _name(table.split(".")[-1], *keys, "uniq")
    kind = "PRIMARY KEY" if con.contype == Ct.CONSTR_PRIMARY else "UNIQUE"
    columns = ", ".join(q(k) for k in keys)
    return (f"CREATE UNIQUE INDEX CONCURRENTLY {q(name)} ON {q(table)} ({columns}); "
            f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {kind} USING INDEX {q(name)}")


def _column_default(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    cmd = _cmd(stmt, At.AT_AddColumn)
    coldef = cmd.def_
    inline = list(coldef.constraints or ())
    default = next(c.raw_expr for c in inline if c.contype == Ct.CONSTR_DEFAULT)
    kept = tuple(c for c in inline if c.contype not in (Ct.CONSTR_DEFAULT, Ct.CONSTR_NOTNULL))
    coldef.constraints = kept or None
    coldef.is_not_null = False
    stmt.cmds = (cmd,)
    added = sql_of(stmt)
    set_default = ast.AlterTableCmd(subtype=At.AT_ColumnDefault, name=coldef.colname, def_=default,
                                    behavior=0)
    stmt.cmds = (set_default,)
    return f"{added}; {sql_of(stmt)}"


def _rename_table(stmt: Any, detail: dict[str, str], version: int | None) -> str:
    old = _table(stmt)
    schema = stmt.relation.schemaname
    new = f"{schema}.{stmt.newname}" if schema else stmt.newname
    return f"{sql_of(stmt)}; CREATE VIEW {q(old)} AS SELECT * FROM {q(new)}  -- until the old release is gone"


BUILDERS: dict[str, Builder] = {
    "create-index": _create_index, "drop-index": _drop_index, "reindex": _reindex,
    "add-foreign-key": _foreign_key, "add-check": _check, "set-not-null": _not_null,
    "add-unique": _unique, "add-column-volatile-default": _column_default,
    "add-column-default-pre11": _column_default, "rename-table": _rename_table,
}


def build(rule: str, statement: str, detail: dict[str, str], version: int | None) -> str:
    """Concrete SQL for `rule` from `statement`, or "" when there is none."""
    builder = BUILDERS.get(rule)
    if builder is None:
        return ""
    try:
        stmt = parse_sql(statement)[0].stmt
        return builder(stmt, detail, version)
    except Exception:  # an unusual statement shape: fall back to the recipe
        return ""
