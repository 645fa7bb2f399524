"""A database shaped like the target: the one definition, for the kit and the rollback script.

Two SQL queries RETURN the statements, as rows (ord, what, statement), given the target and the
new database's name in a `kit_args(target, new)` relation; in `ord` order they give privileges
and settings in the target's own order, so that datacl and setconfig come out identical:

- CREATE_LIKE_SQL: CREATE DATABASE from template0 with the target's encoding, locale (libc,
  ICU or builtin provider), tablespace, and owner when the role is a superuser;
- COPY_PROPERTIES_SQL: its connection limit, privileges (ACL), per-database and
  per-role-in-database settings (list settings such as search_path re-set element by
  element, other values quoted), and COMMENT.

Before it creates anything, a rollback asks `uncopyable` which of the COPY_PROPERTIES_SQL statements
this role could not run (each tried on the target in a transaction that is rolled back).

The kit runs them with psycopg and executes each statement (kit_query); the standalone script
runs the very same text with psql's \\gexec (psql_query, filled in by backup.script). The
queries read pg_database through to_jsonb, so one text serves PostgreSQL 14 to 17.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from migration_tools.core.errors import OperationFailed
from migration_tools.core.redact import redact

# Settings whose value is a list of identifiers: stored quoted, re-set element by element.
LIST_GUCS = frozenset(
    {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
)

CREATE_LIKE_SQL = r"""
SELECT 1 AS ord, 'the database itself' AS what,
       format('CREATE DATABASE %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L',
              a.new, pg_encoding_to_char(d.encoding), d.datcollate, d.datctype)
       || CASE j.provider
            WHEN 'i' THEN format(' LOCALE_PROVIDER icu ICU_LOCALE %L', j.locale)
                          || CASE WHEN j.rules IS NULL THEN '' ELSE format(' ICU_RULES %L', j.rules) END
            WHEN 'b' THEN format(' LOCALE_PROVIDER builtin BUILTIN_LOCALE %L', j.locale)
            WHEN 'c' THEN ' LOCALE_PROVIDER libc'
            ELSE '' END
       || CASE WHEN t.spcname = 'pg_default' THEN '' ELSE format(' TABLESPACE %I', t.spcname) END
       || CASE WHEN r.rolsuper THEN format(' OWNER %I', pg_get_userbyid(d.datdba)) ELSE '' END
       AS statement
FROM kit_args a
JOIN pg_database d ON d.datname = a.target
JOIN pg_tablespace t ON t.oid = d.dattablespace
JOIN pg_roles r ON r.rolname = current_user
CROSS JOIN LATERAL (
  SELECT to_jsonb(d) ->> 'datlocprovider' AS provider,
         coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale') AS locale,
         to_jsonb(d) ->> 'daticurules' AS rules
) j
"""

_LIST_GUCS_SQL = ", ".join(f"'{name}'" for name in sorted(LIST_GUCS))

COPY_PROPERTIES_SQL = rf"""
SELECT 1 AS ord, 'connection limit' AS what,
       format('ALTER DATABASE %I CONNECTION LIMIT %s', a.new, d.datconnlimit) AS statement
FROM kit_args a JOIN pg_database d ON d.datname = a.target
WHERE d.datconnlimit <> -1
UNION ALL
SELECT 2, 'privileges',
       format('REVOKE ALL ON DATABASE %I FROM PUBLIC', a.new)
       || CASE WHEN n.datdba = d.datdba THEN format(', %I', pg_get_userbyid(n.datdba)) ELSE '' END
FROM kit_args a JOIN pg_database d ON d.datname = a.target JOIN pg_database n ON n.datname = a.new
WHERE d.datacl IS NOT NULL
UNION ALL
SELECT 3 + min(g.pos) / 1e6, format('privileges of %s', g.who),
       format('GRANT %s ON DATABASE %I TO %s%s', string_agg(g.privilege_type, ', ' ORDER BY g.privilege_type),
              a.new, g.grantee_sql, CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
FROM kit_args a JOIN pg_database d ON d.datname = a.target
CROSS JOIN LATERAL (
  SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS who,
         CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END
           AS grantee_sql,
         x.privilege_type, x.is_grantable, u.pos
  FROM unnest(d.datacl) WITH ORDINALITY AS u(item, pos), aclexplode(ARRAY[u.item]) x
) g
GROUP BY a.new, g.who, g.grantee_sql, g.is_grantable
UNION ALL
SELECT CASE WHEN s.setrole = 0 THEN 4 ELSE 5 END + c.pos / 1e6,
       CASE WHEN s.setrole = 0 THEN format('setting %s', kv.name)
            ELSE format('setting %s for role %s', kv.name, pg_get_userbyid(s.setrole)) END,
       CASE WHEN s.setrole = 0 THEN format('ALTER DATABASE %I', a.new)
            ELSE format('ALTER ROLE %I IN DATABASE %I', pg_get_userbyid(s.setrole), a.new) END
       || format(' SET %I = ', kv.name)
       || coalesce(
            CASE WHEN kv.name IN ({_LIST_GUCS_SQL}) THEN (
              SELECT string_agg(quote_literal(CASE WHEN left(m.item[1], 1) = '"'
                       THEN replace(substr(m.item[1], 2, length(m.item[1]) - 2), '""', '"')
                       ELSE m.item[1] END), ', ' ORDER BY m.n)
              FROM regexp_matches(kv.value, '("(?:[^"]|"")*"|[^\s,]+)', 'g') WITH ORDINALITY AS m(item, n)
            ) END,
            quote_literal(kv.value))
FROM kit_args a JOIN pg_database d ON d.datname = a.target
JOIN pg_db_role_setting s ON s.setdatabase = d.oid
CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY AS c(item, pos)
CROSS JOIN LATERAL (
  SELECT split_part(c.item, '=', 1) AS name, substr(c.item, strpos(c.item, '=') + 1) AS value
) kv
UNION ALL
SELECT 6, 'comment', format('COMMENT ON DATABASE %I IS %L', a.new, c.description)
FROM kit_args a JOIN pg_database d ON d.datname = a.target
JOIN pg_shdescription c ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass
"""

_OUTER = "\nSELECT {columns} FROM (\n{body}\n) AS shape ORDER BY ord, statement"


def psql_query(body: str) -> str:
    """`body` for psql: the target and new names from the variables :'target' and :'new',
    each statement executed by \\gexec."""
    head = "WITH kit_args(target, new) AS (VALUES (:'target'::name, :'new'::name))"
    return head + _OUTER.format(columns="statement", body=body.strip()) + " \\gexec\n"


def kit_query(body: str, target: str, new: str) -> sql.Composed:
    """`body` for psycopg, returning (what, statement) rows. Run without parameters, so the
    query's `%` stays as it is."""
    return sql.Composed([
        sql.SQL("WITH kit_args(target, new) AS (VALUES ("),
        sql.Literal(target), sql.SQL("::name, "), sql.Literal(new), sql.SQL("::name))"),
        sql.SQL(_OUTER.format(columns="what, statement", body=body.strip())),
    ])


def statements(conn: psycopg.Connection[Any], body: str, target: str, new: str) -> list[tuple[str, str]]:
    return [(str(w), str(s)) for w, s in conn.execute(kit_query(body, target, new)).fetchall()]


def create_like(conn: psycopg.Connection[Any], new: str, target: str) -> None:
    """CREATE DATABASE `new` shaped like `target` (psycopg errors propagate as they are)."""
    todo = statements(conn, CREATE_LIKE_SQL, target, new)
    if not todo:
        raise OperationFailed("db-missing", f"database '{target}' does not exist", "")
    for _what, statement in todo:
        conn.execute(statement)


def uncopyable(conn: psycopg.Connection[Any], target: str) -> list[tuple[str, str]]:
    """(what, why) for each property of `target` this role could not give a new database.

    Each statement copy_properties would run is tried on the target itself, each in a savepoint of
    one transaction that is always rolled back: PostgreSQL's own verdict, on every version, and
    nothing is changed. Run it as a role that owns the target (as a swap needs anyway).
    """
    todo = statements(conn, COPY_PROPERTIES_SQL, target, target)
    problems: list[tuple[str, str]] = []
    if not todo:
        return problems
    with conn.transaction(force_rollback=True):
        for what, statement in todo:
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.Error as exc:
                problems.append((what, _reason(exc)))
    return problems


def _reason(exc: psycopg.Error) -> str:
    return redact(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__


def copy_properties(conn: psycopg.Connection[Any], new: str, target: str) -> None:
    """Give `new` the target's connection limit, privileges, settings and comment.

    Run right after creating `new`, before anything touches the target: a property this role
    may not set (a superuser-only setting, another role's setting) fails here, named. A rollback
    asks `uncopyable` first, before it creates anything.
    """
    for what, statement in statements(conn, COPY_PROPERTIES_SQL, target, new):
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            raise OperationFailed(
                "copy-property",
                f"cannot give the new database the {what} of '{target}' as this role: {_reason(exc)}",
                f"run the rollback as a role that may set it (a superuser), or remove the {what} "
                f"from '{target}'",
            ) from exc
