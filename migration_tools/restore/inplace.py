"""Rollback in place, for a role that may not create databases.

First a pre-rollback safety backup. Then ONE transaction, run by psql fed from Python:

    BEGIN;
    DROP SCHEMA s CASCADE;  -- each schema the role owns (except public)
    DROP TABLE/VIEW/SEQUENCE/ROUTINE/TYPE ... CASCADE;  -- what it owns in the other schemas
    <pg_restore --no-owner -f - backup>  -- the archive as SQL
    DO $$ ... $$;  -- row counts per table and the applied migrations, else RAISE
    COMMIT;  -- written only when pg_restore finished cleanly

so tables created after the backup are gone, and any failure (pg_restore dying, a SQL error,
a count that differs) ends the session without COMMIT: PostgreSQL rolls everything back.
Objects the role does not own (and extension members) are left alone; if the archive needs
to recreate one of them the transaction fails and nothing changes.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from typing import IO, TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from migration_tools.core.errors import KitError, OperationFailed, RolledBack
from migration_tools.core.events import Report, step
from migration_tools.pg import db, tools
from migration_tools.pg.catalog import MIGRATIONS_TABLE, USER_TABLES_SQL
from migration_tools.restore.verify import RestoreOutcome, analyze_and_compare

if TYPE_CHECKING:
    from migration_tools.core.runtime import Kit
    from migration_tools.restore.plan import RollbackPlan

LOCK_TIMEOUT = "30s"
SYSTEM_SCHEMA_FILTER = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
NOT_EXTENSION_MEMBER = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cat}'::regclass "
    "AND e.objid = {oid} AND e.deptype = 'e')"
)

# Each query returns ready-made DROP statements for objects the current role owns.
_OWNED_SCHEMAS = f"""
SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', n.nspname) FROM pg_namespace n
WHERE {SYSTEM_SCHEMA_FILTER} AND n.nspname <> 'public' AND pg_has_role(n.nspowner, 'USAGE')
  AND {NOT_EXTENSION_MEMBER.format(cat='pg_namespace', oid='n.oid')}
ORDER BY 1
"""
_KEPT_SCHEMAS = f"""
SELECT n.oid FROM pg_namespace n WHERE {SYSTEM_SCHEMA_FILTER}
  AND (n.nspname = 'public' OR NOT pg_has_role(n.nspowner, 'USAGE'))
"""
_RELATIONS = f"""
SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
              n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.oid IN ({_KEPT_SCHEMAS})
  AND pg_has_role(c.relowner, 'USAGE') AND {NOT_EXTENSION_MEMBER.format(cat='pg_class', oid='c.oid')}
  AND NOT EXISTS (SELECT 1 FROM pg_depend o WHERE o.classid = 'pg_class'::regclass AND o.objid = c.oid
                  AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i'))
ORDER BY 1
"""
_ROUTINES = f"""
SELECT format('DROP %s IF EXISTS %I.%I(%s) CASCADE',
              CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END,
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.oid IN ({_KEPT_SCHEMAS}) AND pg_has_role(p.proowner, 'USAGE')
  AND {NOT_EXTENSION_MEMBER.format(cat='pg_proc', oid='p.oid')}
ORDER BY 1
"""
_TYPES = f"""
SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
              CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.oid IN ({_KEPT_SCHEMAS}) AND pg_has_role(t.typowner, 'USAGE')
  AND (t.typtype IN ('d', 'e', 'r')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  AND {NOT_EXTENSION_MEMBER.format(cat='pg_type', oid='t.oid')}
ORDER BY 1
"""


def drop_statements(conn: psycopg.Connection[Any]) -> list[str]:
    """DROP statements for everything the role owns outside the system schemas."""
    statements: list[str] = []
    for query in (_OWNED_SCHEMAS, _RELATIONS, _ROUTINES, _TYPES):
        statements += [str(row[0]) for row in conn.execute(query).fetchall()]
    return statements


def check_block(
    conn: psycopg.Connection[Any], counts: dict[str, int], applied: list[tuple[str, str]]
) -> str:
    """A DO block that raises unless the row counts and applied migrations equal the backup's."""
    tag = f"$check_{secrets.token_hex(4)}$"
    lit = lambda value: sql.Literal(value).as_string(conn)  # noqa: E731
    lines = [
        "DECLARE n bigint; BEGIN",
        f"SELECT count(*) INTO n FROM ({USER_TABLES_SQL}) user_tables;",
        f"IF n <> {len(counts)} THEN RAISE EXCEPTION 'rollback check: % tables, the backup has "
        f"{len(counts)}', n; END IF;",
    ]
    for key, expected in sorted(counts.items()):
        schema, _, table = key.partition(".")
        name = sql.Identifier(schema, table).as_string(conn)
        lines.append(
            f"SELECT count(*) INTO n FROM {name}; IF n <> {int(expected)} THEN RAISE EXCEPTION "
            f"'rollback check: % has % rows, the backup {int(expected)}', {lit(key)}, n; END IF;"
        )
    wanted = ",".join(f"{a}.{n}" for a, n in sorted(applied))
    lines.append(
        f"IF to_regclass({lit(MIGRATIONS_TABLE)}) IS NOT NULL THEN "
        f"IF coalesce((SELECT string_agg(app || '.' || name, ',' ORDER BY app, name) "
        f"FROM {MIGRATIONS_TABLE}), '') <> {lit(wanted)} THEN "
        "RAISE EXCEPTION 'rollback check: the applied migrations differ from the backup''s'; END IF; "
        f"ELSIF {lit(wanted)} <> '' THEN RAISE EXCEPTION 'rollback check: {MIGRATIONS_TABLE} is missing'; "
        "END IF;"
    )
    lines.append("END")
    return f"RESET search_path;\nDO {tag}\n" + "\n".join(lines) + f"\n{tag};\n"


def run_transaction(kit: Kit, prelude: str, dump_args: list[str], epilogue: str) -> None:
    """Feed prelude + the archive as SQL + epilogue to psql; COMMIT only if everything got there."""
    params = kit.params
    env = tools.tool_env(params)
    psql_argv = [
        str(tools.find_tool("psql")), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1",
        f"--dbname={make_conninfo(dbname=params.dbname)}",
    ]
    restore_argv = [str(tools.find_tool("pg_restore")), *dump_args]
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        psql = subprocess.Popen(
            psql_argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=env
        )
        restore = subprocess.Popen(restore_argv, stdout=subprocess.PIPE, stderr=restore_err, env=env)
        assert psql.stdin is not None and restore.stdout is not None
        fed = _feed(psql.stdin, prelude.encode(), restore.stdout)
        restore_rc = restore.wait()
        committed = False
        if fed and restore_rc == 0:
            committed = _write(psql.stdin, (epilogue + "COMMIT;\n").encode())
        try:
            psql.stdin.close()
        except BrokenPipeError:
            committed = False
        psql_rc = psql.wait()
        if restore_rc != 0:
            restore_err.seek(0)
            text = restore_err.read().decode(errors="replace")
            raise OperationFailed(
                "restore-failed", tools.tool_failure("pg_restore", restore_rc, text), ""
            )
        if psql_rc != 0 or not committed:
            psql_err.seek(0)
            text = psql_err.read().decode(errors="replace")
            raise OperationFailed("restore-failed", tools.tool_failure("psql", psql_rc, text), "")


def _write(pipe: IO[bytes], data: bytes) -> bool:
    try:
        pipe.write(data)
        pipe.flush()
        return True
    except BrokenPipeError:
        return False


def _feed(pipe: IO[bytes], prelude: bytes, source: IO[bytes]) -> bool:
    """Copy prelude and then source into pipe; False when psql stopped reading (it hit an error)."""
    if not _write(pipe, prelude):
        return False
    try:
        shutil.copyfileobj(source, pipe, 1 << 20)
        return True
    except BrokenPipeError:
        return False
    finally:
        source.close()


def run(kit: Kit, plan: RollbackPlan, report: Report) -> RestoreOutcome:
    from migration_tools.backups import create as backup

    target = plan.database
    report(step("Taking a pre-rollback safety backup (the role may not create databases: "
                "restoring in place)"))
    safety = backup.create_backup(kit, "pre-rollback")
    kit.log.info("pre-rollback safety backup %s", safety.dump.name)
    undo = f"python rollback_manager.py rollback {safety.dump.name} --yes"
    try:
        with db.connect(kit.params, purpose="rollback plan") as conn:
            drops = drop_statements(conn)
            epilogue = check_block(conn, plan.meta.row_counts, plan.meta.applied_migrations)
        prelude = (
            f"BEGIN;\nSET LOCAL lock_timeout = '{LOCK_TIMEOUT}';\n"
            + "".join(f"{statement};\n" for statement in drops)
        )
        report(step(
            f"Restoring {plan.dump.name} in place in one transaction "
            f"(dropping {len(drops)} object(s) the backup replaces)"
        ))
        run_transaction(kit, prelude, ["--no-owner", "--file=-", str(plan.dump)], epilogue)
    except (KitError, psycopg.Error) as exc:
        what = exc.message if isinstance(exc, KitError) else str(exc).strip().splitlines()[0]
        raise RolledBack(
            getattr(exc, "error_id", "rollback-sql"),
            f"{what}; the transaction was rolled back: database '{target}' is as it was "
            f"(safety backup {safety.dump.name} kept)",
            "fix the cause (stop the application if it holds locks; tables of other roles must be "
            "dropped by their owner), then run the rollback again",
        ) from exc
    report(step(f"ANALYZE '{target}' and verify its row counts and applied migrations "
                "against the metadata"))
    check = analyze_and_compare(kit.params, target, plan.meta.row_counts, plan.meta.applied_migrations)
    if not check.ok:
        raise OperationFailed(
            "restore-verify",
            f"after the restore '{target}' does not match the backup's metadata: "
            + "; ".join(check.problems[:3]),
            f"restore the previous state with: {undo}",
        )
    return RestoreOutcome(snapshot=check.snapshot, kept=safety.dump.name, undo=undo)
