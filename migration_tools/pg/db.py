"""The one module that owns the database driver: connections, timeouts, error mapping.

Connections are made as the settings describe them, OPTIONS included (ConnParams.connect_kwargs).
A failure to connect is one KitError. SSL that the settings ask for and the server or the
client's files do not allow is [db-ssl], a pg_hba.conf refusal [db-hba], a value libpq refuses
[db-options]: exit 2 (BadInput) like a wrong password, because it is the configuration, trying
again changes nothing, and every command meets it at its first connection, before it changes or
writes anything. A server that does not answer stays exit 1 (OperationFailed).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.core import djangoenv
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import BadInput, KitError, OperationFailed, status_command
from migration_tools.core.redact import redact

CONNECT_TIMEOUT = 5
APPLICATION_NAME = djangoenv.APPLICATION_NAME
# libpq's words for an SSL set-up the server or the client's files do not allow (not a lost link).
_BAD_VALUE = re.compile(r"invalid \w+ value|invalid integer value")
_SSL_PROBLEM = re.compile(r"does not support SSL|SSL was required|SSL error|certificate|private key|sslmode")


def connect(
    params: ConnParams,
    *,
    dbname: str | None = None,
    autocommit: bool = True,
    purpose: str = "",
    timeout: int | None = None,
) -> psycopg.Connection[Any]:
    """Open a connection as the settings describe it (OPTIONS included: ConnParams.connect_kwargs),
    with the kit's application_name and a timeout (`timeout`, else OPTIONS' connect_timeout, else
    CONNECT_TIMEOUT), mapping failures to KitErrors."""
    target = params.with_db(dbname) if dbname else params
    kwargs = target.connect_kwargs()
    if timeout is not None or "connect_timeout" not in kwargs:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT if timeout is None else timeout
    kwargs["application_name"] = f"{APPLICATION_NAME}{':' + purpose if purpose else ''}"
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise connection_error(target, exc, seconds=kwargs["connect_timeout"]) from exc


def _libpq_reason(text: str) -> str:
    """libpq's reason, without its 'connection to server at ... failed:' preamble."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)
    reason = first.rsplit(" failed: ", 1)[-1].removeprefix("connection is bad: ")
    return redact(" ".join(reason.split()))


def _where(target: ConnParams) -> str:
    host = target.host or f"the host of service {target.option('service')}"
    return f"{host}:{target.port}" if target.port else host


def connection_error(
    target: ConnParams, exc: psycopg.OperationalError, *, seconds: int | str | None = None
) -> KitError:
    """Tell wrong password, missing database, SSL or pg_hba refusal and unreachable server apart."""
    where = _where(target)
    state = exc.sqlstate or ""
    text = str(exc)
    status = f"then run {status_command()}"
    sslmode = target.option("sslmode")
    if _BAD_VALUE.search(text):
        return BadInput(
            "db-options",
            f"libpq refuses a value of the settings' DATABASES OPTIONS: {_libpq_reason(text)}",
            f"fix it, {status}",
        )
    if _SSL_PROBLEM.search(text) and "pg_hba.conf" not in text:
        asked = f"sslmode={sslmode}" if sslmode else "SSL"
        return BadInput(
            "db-ssl",
            f"cannot connect to PostgreSQL at {where} with {asked}: {_libpq_reason(text)}",
            f"enable SSL on the server or fix the ssl* keys of the settings' DATABASES OPTIONS, {status}",
        )
    if "pg_hba.conf" in text:
        encryption = "without SSL" if "no encryption" in text else "with these settings"
        return BadInput(
            "db-hba",
            f"the server at {where} refuses user '{target.user}' {encryption}: {_libpq_reason(text)}",
            f"fix DATABASES OPTIONS (sslmode) or the server's pg_hba.conf, {status}",
        )
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
    if "is not currently accepting connections" in text:
        return OperationFailed(
            "db-refusing",
            f"database '{target.dbname}' on {where} refuses every connection (ALLOW_CONNECTIONS is off, "
            "as a rollback's swap leaves it when killed outright)",
            "the next python rollback_manager.py rollback or emergency-rollback repairs it; "
            f"{status} prints the psql line that does it by hand",
        )
    if "timeout" in text.lower():
        return OperationFailed(
            "db-timeout",
            f"no answer from PostgreSQL at {where} within {seconds or CONNECT_TIMEOUT}s",
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
