"""The deploy lock: one migrate, deploy or rollback at a time per target database.

A PostgreSQL session-level advisory lock, taken in the maintenance database (so that it
survives the target database being renamed during a rollback) under a key derived from the
target database's name. The holder sets its application_name to name its host and pid, so a
refused second run can say who holds the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import psycopg

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import OperationFailed
from migration_tools.pg import databases, db

LOCK_APP_PREFIX = "migration_kit:lock"


def lock_key(dbname: str) -> int:
    """A stable signed 64-bit key for the target database's name."""
    digest = hashlib.sha256(f"migration_kit:{dbname}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holder_name(purpose: str) -> str:
    return f"{LOCK_APP_PREFIX} {purpose} host={socket.gethostname()} pid={os.getpid()}"[:63]


def _open(params: ConnParams, purpose: str) -> psycopg.Connection[Any]:
    # The maintenance database every part of the kit uses, and the rollback script too.
    return databases.connect_maintenance(params, f"lock {purpose}")


def holder(conn: psycopg.Connection[Any], key: int) -> str:
    """Who holds the lock in this connection's database, as its application_name says, or ''."""
    row = conn.execute(
        """
        SELECT a.application_name, a.pid FROM pg_locks l
        JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.classid = ((%(k)s >> 32) & 4294967295)::oid
          AND l.objid = (%(k)s & 4294967295)::oid AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        LIMIT 1
        """,
        {"k": key},
    ).fetchone()
    if not row:
        return ""
    app, backend = row
    if str(app).startswith(LOCK_APP_PREFIX):
        return str(app)[len(LOCK_APP_PREFIX) :].strip()
    return f"backend pid {backend}"


def current_holder(params: ConnParams) -> str:
    """Who holds the deploy lock of `params.dbname` now, or '' when it is free."""
    with _open(params, "status") as conn:
        return holder(conn, lock_key(params.dbname))


_held: set[str] = set()


@contextlib.contextmanager
def hold(params: ConnParams, purpose: str) -> Iterator[None]:
    """Hold the deploy lock for `params.dbname`; refuse at once if another run holds it.

    Re-entrant within one process: full-deploy holds it around migrate, which asks again.
    """
    if params.dbname in _held:
        yield
        return
    key = lock_key(params.dbname)
    conn = _open(params, purpose)
    try:
        conn.execute("SELECT set_config('application_name', %s, false)", (_holder_name(purpose),))
        got = db.scalar(conn, "SELECT pg_try_advisory_lock(%s)", (key,))
        if not got:
            who = holder(conn, key) or "holder unknown"
            raise OperationFailed(
                "deploy-locked",
                f"another migration or rollback is running on database '{params.dbname}' ({who})",
                "wait for it to finish (or stop it), then run the command again",
            )
        _held.add(params.dbname)
        try:
            yield
        finally:
            _held.discard(params.dbname)
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()
