"""Database-level operations of a rollback, run from the maintenance database.

Create a database shaped like the target (encoding, locale, owner, ACL, settings), drop it,
block and re-allow connections, end sessions, and swap two databases by renaming them,
putting everything back when a step fails. None of this runs inside the target itself:
PostgreSQL cannot rename the database a session is connected to.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.pg import db

MAINTENANCE_DBS = ("postgres", "template1")
MAX_IDENT_BYTES = 63
SESSION_DEADLINE_S = 15.0
# GUCs whose value is a list of identifiers: stored quoted, re-set element by element.
LIST_GUCS = frozenset(
    {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
)


@dataclass(frozen=True)
class RoleCaps:
    """What the connected role may do to the target database."""

    superuser: bool
    createdb: bool
    owns_target: bool

    @property
    def can_swap(self) -> bool:
        """Create a new database and rename the target: superuser, or CREATEDB and owner."""
        return self.superuser or (self.createdb and self.owns_target)


@dataclass(frozen=True)
class DatabaseInfo:
    name: str
    owner: str
    encoding: str
    collate: str
    ctype: str
    locale_provider: str
    icu_locale: str | None
    allow_connections: bool
    connection_limit: int
    acl: list[tuple[str, str, bool]] = field(default_factory=list)  # (grantee, privilege, grantable)
    acl_is_default: bool = True
    settings: list[tuple[str | None, str, str]] = field(default_factory=list)  # (role, name, value)


def side_name(dbname: str, tag: str, ts: str) -> str:
    """`<db>__<tag>_<ts>`, shortening the database part to fit PostgreSQL's 63-byte names."""
    suffix = f"__{tag}_{ts}"
    room = MAX_IDENT_BYTES - len(suffix.encode())
    head = dbname.encode()[:room].decode(errors="ignore")
    return head + suffix


@contextlib.contextmanager
def maintenance(params: ConnParams, purpose: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to a database other than the target."""
    conn: psycopg.Connection[Any] | None = None
    last: KitError | None = None
    for name in MAINTENANCE_DBS:
        if name == params.dbname:
            continue
        try:
            conn = db.connect(params, dbname=name, purpose=purpose)
            break
        except KitError as exc:
            last = exc
    if conn is None:
        raise OperationFailed(
            "maintenance-db",
            f"cannot connect to a maintenance database ({', '.join(MAINTENANCE_DBS)}) as "
            f"'{params.user}': {last.message if last else 'no candidate'}",
            "grant CONNECT on database postgres to this role",
        )
    try:
        yield conn
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()


def role_caps(conn: psycopg.Connection[Any], target: str) -> RoleCaps:
    row = conn.execute(
        """
        SELECT r.rolsuper, r.rolcreatedb,
               coalesce(pg_has_role(current_user, d.datdba, 'USAGE'), false)
        FROM pg_roles r LEFT JOIN pg_database d ON d.datname = %s
        WHERE r.rolname = current_user
        """,
        (target,),
    ).fetchone()
    if row is None:
        return RoleCaps(False, False, False)
    return RoleCaps(bool(row[0]), bool(row[1]), bool(row[2]))


def exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def database_info(conn: psycopg.Connection[Any], name: str) -> DatabaseInfo:
    provider_cols = (
        "d.datlocprovider::text, d.daticulocale"
        if db.server_version_num(conn) >= 150000
        else "'c', NULL::text"
    )
    row = conn.execute(
        sql.SQL(
            "SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, "
            "d.datctype, {}, d.datallowconn, d.datconnlimit, d.datacl IS NULL, d.oid "
            "FROM pg_database d WHERE d.datname = %s"
        ).format(sql.SQL(provider_cols)),
        (name,),
    ).fetchone()
    if row is None:
        raise OperationFailed("db-missing", f"database '{name}' does not exist", "")
    owner, encoding, collate, ctype, provider, icu, allow, limit, acl_default, oid = row
    acl = [
        (str(g), str(p), bool(gr))
        for g, p, gr in conn.execute(
            """
            SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                   a.privilege_type, a.is_grantable
            FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = %s
            ORDER BY 1, 2
            """,
            (name,),
        ).fetchall()
    ]
    settings: list[tuple[str | None, str, str]] = []
    for role, config in conn.execute(
        "SELECT CASE WHEN setrole = 0 THEN NULL ELSE pg_get_userbyid(setrole) END, setconfig "
        "FROM pg_db_role_setting WHERE setdatabase = %s ORDER BY 1 NULLS FIRST",
        (oid,),
    ).fetchall():
        for item in config or []:
            key, _, value = str(item).partition("=")
            settings.append((role, key, value))
    return DatabaseInfo(
        name, str(owner), str(encoding), str(collate), str(ctype), str(provider),
        None if icu is None else str(icu), bool(allow), int(limit), acl, bool(acl_default), settings,
    )


def create_like(conn: psycopg.Connection[Any], new: str, like: DatabaseInfo, *, keep_owner: bool) -> None:
    """CREATE DATABASE new from template0 with the target's encoding and locale."""
    parts = [
        sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            sql.Identifier(new), sql.Literal(like.encoding), sql.Literal(like.collate),
            sql.Literal(like.ctype),
        )
    ]
    if like.locale_provider == "i" and like.icu_locale:
        parts.append(
            sql.SQL("LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(like.icu_locale))
        )
    if keep_owner:
        parts.append(sql.SQL("OWNER {}").format(sql.Identifier(like.owner)))
    conn.execute(sql.SQL(" ").join(parts))


def copy_properties(conn: psycopg.Connection[Any], new: str, like: DatabaseInfo) -> None:
    """Give `new` the target's connection limit, privileges and per-database settings."""
    ident = sql.Identifier(new)
    if like.connection_limit != -1:
        conn.execute(
            sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(ident, sql.Literal(like.connection_limit))
        )
    if not like.acl_is_default:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
        for grantee, privilege, grantable in like.acl:
            who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
            conn.execute(
                sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    sql.SQL(privilege), ident, who,
                    sql.SQL(" WITH GRANT OPTION" if grantable else ""),
                )
            )
    for role, name, value in like.settings:
        if name in LIST_GUCS:
            items = [v.strip().strip('"') for v in value.split(",") if v.strip()]
            value_sql = sql.SQL(", ").join(sql.Literal(v) for v in items)
        else:
            value_sql = sql.Literal(value)
        head = (
            sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), ident)
            if role
            else sql.SQL("ALTER DATABASE {}").format(ident)
        )
        conn.execute(sql.SQL("{} SET {} = {}").format(head, sql.Identifier(name), value_sql))


def stale_copies(conn: psycopg.Connection[Any], target: str) -> list[str]:
    """Restore copies of `target` left by a rollback that was killed before it could drop them.

    Only call this while holding the deploy lock: then no rollback of `target` is running.
    """
    prefix = side_name(target, "restore", "")
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1", (prefix,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def drop(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop a database this rollback created, ending any session in it."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def set_allow_connections(conn: psycopg.Connection[Any], name: str, allow: bool) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allow else "false")
        )
    )


def sessions(conn: psycopg.Connection[Any], name: str) -> list[str]:
    """Other sessions connected to `name`, described as 'user (application, pid N)'."""
    rows = conn.execute(
        "SELECT usename, application_name, pid FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() ORDER BY pid",
        (name,),
    ).fetchall()
    return [f"{u} ({a or 'no application_name'}, pid {p})" for u, a, p in rows]


def end_sessions(conn: psycopg.Connection[Any], name: str, deadline_s: float = SESSION_DEADLINE_S) -> int:
    """Terminate every other session on `name` and wait until they are gone; returns how many."""
    ended = 0
    stop = time.monotonic() + deadline_s
    while True:
        # Autovacuum workers are left out: RENAME cancels them itself.
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'",
            (name,),
        ).fetchall()
        if not rows:
            return ended
        ended += sum(1 for (ok,) in rows if ok)
        if time.monotonic() > stop:
            left = sessions(conn, name)
            raise OperationFailed(
                "sessions-remain",
                f"{len(left)} session(s) still connected to '{name}' after {deadline_s:.0f}s: "
                + "; ".join(left[:5]),
                "stop the application (or run the rollback as a role allowed to end its sessions), "
                "then run the command again",
            )
        time.sleep(0.05)


def rename(conn: psycopg.Connection[Any], old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def swap(
    conn: psycopg.Connection[Any], target: str, replacement: str, aside: str, *, allow_after: bool
) -> int:
    """Rename target -> aside and replacement -> target, or leave both as they were.

    New logins to the target are blocked first and its sessions ended, so the renames cannot
    wait on them. On failure the names and the target's login setting are put back and the
    error re-raised. Returns how many sessions were ended.
    """
    set_allow_connections(conn, target, False)
    renamed = False
    try:
        ended = end_sessions(conn, target)
        rename(conn, target, aside)
        renamed = True
        rename(conn, replacement, target)
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            if renamed:
                rename(conn, aside, target)
            set_allow_connections(conn, target, allow_after)
        raise
    # The swap is done; the kept database's login setting is cosmetic and must not undo it.
    with contextlib.suppress(psycopg.Error):
        set_allow_connections(conn, aside, allow_after)
    return ended
