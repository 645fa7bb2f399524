"""The one module that owns the database driver: connections, timeouts, error mapping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import BadInput, KitError, OperationFailed, prog_name

CONNECT_TIMEOUT = 5
APPLICATION_NAME = "migration_kit"


def connect(
    params: ConnParams,
    *,
    dbname: str | None = None,
    autocommit: bool = True,
    purpose: str = "",
    timeout: int = CONNECT_TIMEOUT,
) -> psycopg.Connection[Any]:
    """Open a connection with a timeout and an application_name, mapping failures to KitErrors."""
    target = params.with_db(dbname) if dbname else params
    try:
        return psycopg.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password or None,
            dbname=target.dbname,
            connect_timeout=timeout,
            application_name=f"{APPLICATION_NAME}{':' + purpose if purpose else ''}",
            autocommit=autocommit,
        )
    except psycopg.OperationalError as exc:
        raise connection_error(target, exc) from exc


def connection_error(target: ConnParams, exc: psycopg.OperationalError) -> KitError:
    """Tell wrong password, missing database and unreachable server apart."""
    where = f"{target.host}:{target.port}"
    state = exc.sqlstate or ""
    text = str(exc)
    status = f"then run {prog_name()} status"
    if state in ("28P01", "28000") or "password authentication failed" in text:
        return BadInput(
            "db-auth",
            f"password authentication failed for user '{target.user}' on {where}",
            f"fix DB_PASSWORD (or DB_USER), {status}",
        )
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return BadInput(
            "db-missing",
            f"database '{target.dbname}' not found on {where}",
            f"fix DB_NAME or create the database, {status}",
        )
    if "timeout" in text.lower():
        return OperationFailed(
            "db-timeout",
            f"no answer from PostgreSQL at {where} within {CONNECT_TIMEOUT}s",
            f"check DB_HOST/DB_PORT and the network, {status}",
        )
    return OperationFailed(
        "db-unreachable",
        f"cannot connect to PostgreSQL at {where} (server down or wrong port)",
        f"start the server or fix DB_HOST/DB_PORT, {status}",
    )


def server_version_num(conn: psycopg.Connection[Any]) -> int:
    return int(scalar(conn, "SHOW server_version_num"))


def scalar(conn: psycopg.Connection[Any], query: str | sql.Composable, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(query, args)
        row = cur.fetchone()
        return None if row is None else row[0]


@contextlib.contextmanager
def statement_timeout(conn: psycopg.Connection[Any], ms: int) -> Iterator[None]:
    """A scoped statement timeout for an autocommit connection."""
    conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{ms}ms")))
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("RESET statement_timeout")
