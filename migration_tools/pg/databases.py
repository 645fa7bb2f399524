"""Database-level operations of a rollback, run from the maintenance database.

Name side databases, choose the maintenance database, drop a database, block and re-allow
connections, and swap two databases by renaming them, putting everything back
when a step fails. None of this runs inside the target itself: PostgreSQL cannot rename the
database a session is connected to. Creating a database shaped like the target is in
pg.database_shape; finding and ending the sessions on it, in pg.sessions.

The side-name rule and the maintenance-database policy below are the only ones: the
standalone rollback script (backup/rollback_script.sh) is rendered from them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.pg import db, sessions
from migration_tools.pg.idents import ident

MAX_IDENT_BYTES = 63

# -- side names: <db>__<tag>_<stamp> ------------------------------------------------------------

STAMP_TIME_FORMAT = "%Y%m%d_%H%M%S"  # UTC; date(1) takes the same format
STAMP_HEX_DIGITS = 4
STAMP_LEN = len("20260101_000000") + 1 + STAMP_HEX_DIGITS
# A stamp new_stamp() makes, or one of the kit's older second-resolution stamps.
STAMP_PATTERN = r"^[0-9]{8}_[0-9]{6}(_[0-9a-f]{4})?$"
RESTORE_TAG = "restore"  # a copy being restored; dropped when left behind by a killed rollback
ASIDE_TAG = "pre_rollback"  # the replaced database, kept
UNDONE_TAG = "rolled_back"  # the restored database, set aside by the printed undo command
SIDE_TAGS = (RESTORE_TAG, ASIDE_TAG, UNDONE_TAG)

_STAMP_RE = re.compile(STAMP_PATTERN)
_issued: tuple[str, set[str]] = ("", set())


def new_stamp(moment: datetime | None = None) -> str:
    """`YYYYmmdd_HHMMSS_xxxx` (UTC, fixed length): 4 random hex digits keep two operations
    of one second apart, and this process never hands out the same stamp twice."""
    global _issued
    second = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime(STAMP_TIME_FORMAT)
    if _issued[0] != second:
        _issued = (second, set())
    while True:
        stamp = f"{second}_{secrets.token_hex(STAMP_HEX_DIGITS // 2)}"
        if stamp not in _issued[1]:
            _issued[1].add(stamp)
            return stamp


def clip_identifier(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` bytes of UTF-8, never inside a character."""
    return text.encode()[: max(0, max_bytes)].decode(errors="ignore")


def side_prefix(dbname: str, tag: str, stamp_len: int = STAMP_LEN) -> str:
    """`<db>__<tag>_`, the database part clipped so that a `stamp_len`-byte stamp fits in 63 bytes."""
    marker = f"__{tag}_"
    return clip_identifier(dbname, MAX_IDENT_BYTES - len(marker.encode()) - stamp_len) + marker


def side_name(dbname: str, tag: str, stamp: str) -> str:
    """`<db>__<tag>_<stamp>`, shortening the database part to fit PostgreSQL's 63-byte names."""
    return side_prefix(dbname, tag, len(stamp.encode())) + stamp


def side_databases(
    conn: psycopg.Connection[Any], target: str, tags: Iterable[str] = SIDE_TAGS
) -> dict[str, list[str]]:
    """The side databases of `target` by tag: exactly the names side_name() gives it."""
    found: dict[str, list[str]] = {tag: [] for tag in tags}
    for (name,) in conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall():
        for tag, names in found.items():
            _, marker, stamp = str(name).rpartition(f"__{tag}_")
            if marker and _STAMP_RE.match(stamp) and side_name(target, tag, stamp) == name:
                names.append(str(name))
    return found


def stale_copies(conn: psycopg.Connection[Any], target: str) -> list[str]:
    """Restore copies of `target` left by a rollback (the kit's or the script's) that was killed
    before it could drop them.

    Only call this while holding the deploy lock: then no rollback of `target` is running.
    """
    return side_databases(conn, target, (RESTORE_TAG,))[RESTORE_TAG]


# -- the maintenance database ----------------------------------------------------------------

MAINTENANCE_ENV = "DB_MAINTENANCE_DB"
MAINTENANCE_DBS = ("postgres", "template1")
# Connection errors saying that this role cannot use this one database (as opposed to a server
# that is down, a wrong password or too many connections): only these move on to the next
# candidate, so the kit and the script settle on the same database and share the deploy lock.
# "{db}" stands for the candidate's name.
UNUSABLE_DB_ERRORS = (
    'database "{db}" does not exist',
    'permission denied for database "{db}"',
    'database "{db}" is not currently accepting connections',
    "no pg_hba.conf entry for",
    "pg_hba.conf rejects connection for",
)


def maintenance_candidates(target: str) -> tuple[str, ...]:
    """Where to connect for CREATE/ALTER/DROP DATABASE and the deploy lock, in order:
    $DB_MAINTENANCE_DB alone when set, else postgres then template1; never the target."""
    chosen = os.environ.get(MAINTENANCE_ENV, "")
    return tuple(name for name in ((chosen,) if chosen else MAINTENANCE_DBS) if name != target)


def connect_maintenance(params: ConnParams, purpose: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the first usable maintenance candidate."""
    candidates = maintenance_candidates(params.dbname)
    skipped: list[str] = []
    for name in candidates:
        try:
            return db.connect(params, dbname=name, purpose=purpose)
        except KitError as exc:
            detail = str(exc.__cause__ or exc.message).strip()
            if not any(p.format(db=name) in detail for p in UNUSABLE_DB_ERRORS):
                raise
            skipped.append(f"{name}: {detail.splitlines()[-1].removeprefix('FATAL:').strip()}")
    tried = "; ".join(skipped) or f"{MAINTENANCE_ENV} names the target database itself"
    raise OperationFailed(
        "maintenance-db",
        f"no maintenance database '{params.user}' may connect to ({tried})",
        f"grant CONNECT on database postgres to this role, or set {MAINTENANCE_ENV} "
        "to another database it may connect to",
    )


@contextlib.contextmanager
def maintenance(params: ConnParams, purpose: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to a database other than the target (connect_maintenance)."""
    conn = connect_maintenance(params, purpose)
    try:
        yield conn
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()


# -- the target ------------------------------------------------------------------------------


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
    """What a rollback reports and restores about the target (its shape: pg.database_shape)."""
    name: str
    owner: str
    encoding: str
    collate: str
    ctype: str
    allow_connections: bool


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
    row = conn.execute(
        "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, "
        "datallowconn FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    if row is None:
        raise OperationFailed("db-missing", f"database '{name}' does not exist", "")
    owner, encoding, collate, ctype, allow = row
    return DatabaseInfo(name, str(owner), str(encoding), str(collate), str(ctype), bool(allow))


def drop(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop a database this rollback created, ending any session in it."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def set_allow_connections(conn: psycopg.Connection[Any], name: str, allow: bool) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allow else "false")
        )
    )


def rename(conn: psycopg.Connection[Any], old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


class SwapNotUndone(OperationFailed):
    """A swap failed and putting the names or the login setting back failed too; says what is left."""


def swap(
    conn: psycopg.Connection[Any], target: str, replacement: str, aside: str, *, allow_after: bool
) -> int:
    """Rename target -> aside and replacement -> target, or leave both as they were.

    New logins to the target are blocked first and its sessions ended (pg.sessions.end_all), so
    the renames cannot wait on them. On failure the names and the target's login setting are put
    back and the error re-raised; when putting them back fails too, SwapNotUndone (from the first
    error) says what is left and how to repair it. Returns how many sessions were ended.
    """
    set_allow_connections(conn, target, False)
    renamed = False
    try:
        ended = sessions.end_all(conn, target)
        rename(conn, target, aside)
        renamed = True
        rename(conn, replacement, target)
    except BaseException as exc:
        left = _put_back(conn, target, aside, renamed=renamed, allow=allow_after)
        if left:
            raise SwapNotUndone("swap-not-undone", left, "") from exc
        raise
    # The swap is done; the kept database's login setting is cosmetic and must not undo it.
    with contextlib.suppress(psycopg.Error):
        set_allow_connections(conn, aside, allow_after)
    return ended


def _put_back(conn: psycopg.Connection[Any], target: str, aside: str, *, renamed: bool, allow: bool) -> str:
    """Undo the first steps of a swap; '' when done, else what is left and the SQL that repairs it."""
    try:
        if renamed:
            rename(conn, aside, target)
    except psycopg.Error as exc:
        return (f"putting the names back failed too ({_first_line(exc)}): the live database is now named "
                f"'{aside}' and refuses connections; repair it as its owner with ALTER DATABASE "
                f"{ident(aside)} RENAME TO {ident(target)}; ALTER DATABASE {ident(target)} "
                "ALLOW_CONNECTIONS true")
    try:
        set_allow_connections(conn, target, allow)
    except psycopg.Error as exc:
        return (f"re-allowing connections failed too ({_first_line(exc)}): '{target}' refuses connections "
                "until the next rollback of it re-allows them (or, as its owner, ALTER DATABASE "
                f"{ident(target)} ALLOW_CONNECTIONS true)")
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
