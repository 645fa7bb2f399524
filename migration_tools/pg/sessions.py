"""Sessions connected to a database, as far as the kit's role may see them, and ending them.

Without pg_read_all_stats a role sees other roles' sessions in pg_stat_activity with most columns
NULL (backend_type, state, query, ...); datname, pid, usesysid, usename and application_name are
always filled in. So the kit filters on those alone. Background processes such as autovacuum
workers have no role (usesysid NULL) and are left alone: renaming or dropping a database cancels
them, and only a superuser may signal them.

PostgreSQL (pg_terminate_backend) lets a role end a session when it is a superuser, or when the
session's role is not a superuser and the role has the privileges of the session's role or of
pg_signal_backend. `Session.may_end` is that rule, read before anything is tried.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from migration_tools.core.errors import OperationFailed
from migration_tools.pg.idents import ident

SESSION_DEADLINE_S = 15.0
# A session the role may not end gets this long to leave by itself (a client that has just
# disconnected is still listed for a moment) before the kit says it cannot end it: longer before
# anything is changed, shorter once logins to the database are blocked.
UNENDABLE_GRACE_S = 3.0
BLOCKED_GRACE_S = 1.5
TERMINATE_WAIT_S = 2.0
MAX_LISTED = 5

_ROLE_SQL = "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
_COLUMNS = """
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(r.rolsuper, false),
       CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN true
            WHEN coalesce(r.rolsuper, true) THEN false
            ELSE pg_has_role(current_user, a.usesysid, 'USAGE')
                 OR pg_has_role(current_user, 'pg_signal_backend', 'USAGE') END
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
"""
_CONNECTED_SQL = _COLUMNS + """
WHERE a.datname = %s AND a.pid <> pg_backend_pid() AND a.usesysid IS NOT NULL ORDER BY a.pid
"""
# Sessions holding a lock on a table of the current database that the role owns (the tables an
# in-place rollback replaces). pg_locks is readable by every role.
_LOCK_HOLDERS_SQL = _COLUMNS + """
WHERE a.pid <> pg_backend_pid() AND a.usesysid IS NOT NULL AND a.pid IN (
  SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
  WHERE l.locktype = 'relation' AND l.granted
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND c.relkind IN ('r', 'p') AND pg_has_role(c.relowner, 'USAGE'))
ORDER BY a.pid
"""


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    application: str
    superuser: bool  # the session's role is a superuser
    may_end: bool  # the connected role may end it

    def describe(self) -> str:
        return f"{self.user} ({self.application or 'no application_name'}, pid {self.pid})"


def _rows(conn: psycopg.Connection[Any], query: str, args: Any = None) -> list[Session]:
    return [
        Session(int(pid), str(user), str(app), bool(superuser), bool(may_end))
        for pid, user, app, superuser, may_end in conn.execute(query, args).fetchall()
    ]


def connected(conn: psycopg.Connection[Any], dbname: str) -> list[Session]:
    """Other sessions connected to `dbname` (background processes left out)."""
    return _rows(conn, _CONNECTED_SQL, (dbname,))


def lock_holders(conn: psycopg.Connection[Any]) -> list[Session]:
    """Other sessions holding a lock on a table of this connection's database that the role owns."""
    return _rows(conn, _LOCK_HOLDERS_SQL)


def unendable(
    conn: psycopg.Connection[Any], dbname: str, grace_s: float = UNENDABLE_GRACE_S
) -> list[Session]:
    """Sessions on `dbname` the role may not end that are still there after `grace_s`."""
    stop = time.monotonic() + grace_s
    while True:
        stuck = [s for s in connected(conn, dbname) if not s.may_end]
        if not stuck or time.monotonic() >= stop:
            return stuck
        time.sleep(0.1)


def terminate(
    conn: psycopg.Connection[Any], found: Iterable[Session], wait_s: float = TERMINATE_WAIT_S
) -> list[Session]:
    """Signal the sessions the role may end and wait (up to `wait_s`) until they have exited;
    returns those signalled."""
    ended = []
    for session in found:
        if not session.may_end:
            continue
        try:
            row = conn.execute("SELECT pg_terminate_backend(%s)", (session.pid,)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            continue
        if row and row[0]:
            ended.append(session)
    stop = time.monotonic() + wait_s
    pids = [s.pid for s in ended]
    while pids and time.monotonic() < stop:
        if conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone() is None:
            break
        time.sleep(0.05)
    return ended


def role(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(_ROLE_SQL).fetchone()
    return str(row[0]) if row else ""


def listed(found: list[Session]) -> str:
    text = "; ".join(s.describe() for s in found[:MAX_LISTED])
    return text + (f"; and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else "")


def privilege_hint(me: str, found: list[Session]) -> str:
    """How to let role `me` end `found`: the privilege to grant, or why no grant helps."""
    parts = []
    others = sorted({s.user for s in found if not s.superuser})
    if others:
        parts.append(f"as a superuser run GRANT pg_signal_backend TO {ident(me)} (or GRANT "
                     f"{', '.join(ident(r) for r in others)} TO {ident(me)})")
    supers = sorted({s.user for s in found if s.superuser})
    if supers:
        parts.append(f"sessions of superuser {', '.join(supers)} can be ended only by a superuser: "
                     "close them")
    return "; ".join(parts)


def not_endable(me: str, dbname: str, found: list[Session], state: str, then: str) -> OperationFailed:
    """The error naming the sessions `me` may not end and the privilege that would let it."""
    return OperationFailed(
        "sessions-not-endable",
        f"role '{me}' may not end {len(found)} session(s) connected to '{dbname}': {listed(found)}; {state}",
        f"{privilege_hint(me, found)}, or stop those sessions, then {then}",
    )


def end_all(conn: psycopg.Connection[Any], dbname: str, deadline_s: float = SESSION_DEADLINE_S) -> int:
    """End every other session on `dbname` and wait until they are gone; returns how many.

    Raises OperationFailed [sessions-not-endable] as soon as a session the role may not end has
    stayed BLOCKED_GRACE_S, and [sessions-remain] after `deadline_s`.
    """
    ended: set[int] = set()
    stop = time.monotonic() + deadline_s
    stuck_since: float | None = None
    while True:
        found = connected(conn, dbname)
        if not found:
            return len(ended)
        ended.update(s.pid for s in terminate(conn, (s for s in found if s.pid not in ended)))
        stuck = [s for s in found if not s.may_end]
        now = time.monotonic()
        stuck_since = (stuck_since or now) if stuck else None
        if stuck and stuck_since is not None and now - stuck_since >= BLOCKED_GRACE_S:
            raise not_endable(role(conn), dbname, stuck, "so the swap cannot go on",
                              "run the rollback again")
        if now > stop:
            left = connected(conn, dbname)
            raise OperationFailed(
                "sessions-remain",
                f"{len(left)} session(s) still connected to '{dbname}' after {deadline_s:.0f}s: "
                + listed(left),
                "stop the application, then run the command again",
            )
        time.sleep(0.05)
