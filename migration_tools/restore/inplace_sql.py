"""The SQL of an in-place rollback's one transaction, around the archive's own SQL (restore.inplace).

    BEGIN;
    SET LOCAL lock_timeout / statement_timeout = <one try's lock wait>;
    DO: LOCK TABLE <every table the role owns> IN ACCESS EXCLUSIVE MODE, or RAISE LOCK_WAIT_MARKER;
    SELECT lo_unlink(...)  -- the role's large objects: the archive recreates them with their OIDs
    DROP SCHEMA s CASCADE;  -- each schema the role owns (except public)
    DROP TABLE/VIEW/SEQUENCE/ROUTINE/TYPE ... CASCADE;  -- what it owns in the other schemas
    <pg_restore --single-transaction --no-owner -f -, without its BEGIN and COMMIT>
    DO: row counts per table and the applied migrations, else RAISE;
    COMMIT;

The locks are taken in one statement bounded by the statement timeout as well, so the application,
whose statements queue behind the rollback's lock requests, waits at most one try's lock wait.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.pg.catalog import MIGRATIONS_TABLE, USER_TABLES_SQL

SYSTEM_SCHEMA_FILTER = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
NOT_EXTENSION_MEMBER = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cat}'::regclass "
    "AND e.objid = {oid} AND e.deptype = 'e')"
)
# The one error text the kit recognises (its own, so the server's language does not matter).
LOCK_WAIT_MARKER = "rollback lock wait timed out"

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
# Every table the role owns, in one LOCK statement; a lock wait that runs out becomes the marker.
_LOCK_TABLES = f"""
DO $lock$
DECLARE tables text;
BEGIN
  SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY n.nspname, c.relname)
    INTO tables
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND {SYSTEM_SCHEMA_FILTER} AND pg_has_role(c.relowner, 'USAGE')
    AND {NOT_EXTENSION_MEMBER.format(cat='pg_class', oid='c.oid')};
  IF tables IS NOT NULL THEN
    EXECUTE 'LOCK TABLE ' || tables || ' IN ACCESS EXCLUSIVE MODE';
  END IF;
EXCEPTION WHEN lock_not_available OR query_canceled THEN
  RAISE EXCEPTION '{LOCK_WAIT_MARKER} (%)', current_setting('lock_timeout')
    USING ERRCODE = 'lock_not_available';
END
$lock$;
"""
# Large objects the role owns: the archive recreates its own with lo_create(<oid>).
UNLINK_LARGE_OBJECTS = (
    "SELECT count(lo_unlink(l.oid)) FROM pg_largeobject_metadata l WHERE pg_has_role(l.lomowner, 'USAGE');\n"
)


def drop_statements(conn: psycopg.Connection[Any]) -> list[str]:
    """DROP statements for everything the role owns outside the system schemas."""
    statements: list[str] = []
    for query in (_OWNED_SCHEMAS, _RELATIONS, _ROUTINES, _TYPES):
        statements += [str(row[0]) for row in conn.execute(query).fetchall()]
    return statements


def prelude(drops: list[str], lock_timeout_s: float) -> str:
    """BEGIN, the bounded lock wait, the large objects and the drops."""
    ms = max(1, round(lock_timeout_s * 1000))
    return (
        f"BEGIN;\nSET LOCAL lock_timeout = '{ms}ms';\nSET LOCAL statement_timeout = '{ms}ms';\n"
        + _LOCK_TABLES
        + "SET LOCAL statement_timeout = 0;\n"
        + UNLINK_LARGE_OBJECTS
        + "".join(f"{statement};\n" for statement in drops)
    )


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
