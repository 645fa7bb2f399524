"""Feed one transaction to psql: a prelude, an archive as SQL, an epilogue, then COMMIT.

The archive comes from `pg_restore --single-transaction -f -`: then pg_restore writes exactly one
`BEGIN;` (before any object) and one `COMMIT;` (after the last one) of its own, and no other
transaction control. Without --single-transaction it wraps large objects in BEGIN/COMMIT, which
would commit the rollback half done. `ArchiveSql` passes the SQL through with those two lines
taken out, holding back the end of the stream until it has found its COMMIT; COMMIT is written
only once pg_restore finished cleanly and psql took everything, so any failure (pg_restore
dying, an SQL error, the check raising) ends psql without COMMIT: PostgreSQL rolls it all back.
"""

from __future__ import annotations

import subprocess
import tempfile
from typing import IO, TYPE_CHECKING

from psycopg.conninfo import make_conninfo

from migration_tools.core.errors import OperationFailed
from migration_tools.pg import tools
from migration_tools.restore.inplace_sql import LOCK_WAIT_MARKER

if TYPE_CHECKING:
    from migration_tools.core.runtime import Kit

PSQL_APPLICATION_NAME = "migration_kit:rollback in place"
CHUNK = 1 << 20
HEAD_LIMIT = 1 << 20  # pg_restore's BEGIN comes after a header of a few hundred bytes
TAIL_KEEP = 1 << 16  # the trailer after its COMMIT is a few comment lines
_BEGIN, _COMMIT = b"\nBEGIN;\n", b"\nCOMMIT;\n"
# pg_restore 17+ writes this among its opening SETs; a server before 17 refuses the parameter, so it
# is set only where it exists (the SETs come within the first few hundred bytes after BEGIN).
_TIMEOUT_SET = b"\nSET transaction_timeout = 0;\n"
_TIMEOUT_SET_ANY_SERVER = (b"\nSELECT pg_catalog.set_config('transaction_timeout', '0', false) WHERE "
                           b"pg_catalog.current_setting('server_version_num')::int >= 170000;\n")
_OPENING = 2048


class LockWaitTimedOut(OperationFailed):
    """One try of the transaction could not take its locks in time; nothing was changed."""


class ArchiveShapeError(Exception):
    """pg_restore's SQL lacked its own BEGIN or final COMMIT (it stopped early, or a new format)."""


def _trailer_only(data: bytes) -> bool:
    lines = data.decode(errors="replace").splitlines()
    return all(not ln.strip() or ln.startswith(("--", "\\unrestrict")) for ln in lines)


def copy_archive_sql(source: IO[bytes], sink: IO[bytes]) -> None:
    """Copy pg_restore's single-transaction SQL from source to sink without its BEGIN and COMMIT.

    Raises ArchiveShapeError (having written no COMMIT of any kind) when either is missing.
    """
    head = b"\n"
    while (found := head.find(_BEGIN)) < 0:
        chunk = source.read(CHUNK)
        if not chunk or len(head) > HEAD_LIMIT:
            raise ArchiveShapeError("pg_restore's SQL does not start its transaction with BEGIN")
        head += chunk
    pending = head[1:found + 1] + head[found + len(_BEGIN):]
    pending = pending[:_OPENING].replace(_TIMEOUT_SET, _TIMEOUT_SET_ANY_SERVER, 1) + pending[_OPENING:]
    while chunk := source.read(CHUNK):
        pending += chunk
        if len(pending) > 2 * TAIL_KEEP:
            sink.write(pending[:-TAIL_KEEP])
            pending = pending[-TAIL_KEEP:]
    end = pending.rfind(_COMMIT)
    if end < 0 or not _trailer_only(pending[end + len(_COMMIT):]):
        raise ArchiveShapeError("pg_restore's SQL does not end with its COMMIT (did it stop early?)")
    sink.write(pending[:end + 1] + pending[end + len(_COMMIT):])


def _write(pipe: IO[bytes], data: bytes) -> bool:
    try:
        pipe.write(data)
        pipe.flush()
        return True
    except BrokenPipeError:
        return False


def _feed(pipe: IO[bytes], prelude: bytes, source: IO[bytes]) -> tuple[bool, str]:
    """(psql took everything, the archive's shape problem or '')."""
    try:
        if not _write(pipe, prelude):
            return False, ""
        copy_archive_sql(source, pipe)
        return True, ""
    except BrokenPipeError:
        return False, ""
    except ArchiveShapeError as exc:
        return True, str(exc)
    finally:
        source.close()


def run_transaction(kit: Kit, prelude: str, restore_args: list[str], epilogue: str) -> None:
    """Run prelude + `pg_restore <restore_args>` (SQL on stdout) + epilogue + COMMIT in one psql.

    Raises LockWaitTimedOut when the prelude's lock wait ran out, else OperationFailed
    [restore-failed] naming the first failure; in either case nothing was committed.
    """
    env = tools.tool_env(kit.params)
    psql_argv = [
        str(tools.find_tool("psql")), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1",
        f"--dbname={make_conninfo(dbname=kit.params.dbname)}",
    ]
    restore_argv = [str(tools.find_tool("pg_restore")), *restore_args]
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        psql = subprocess.Popen(
            psql_argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err,
            env=env | {"PGAPPNAME": PSQL_APPLICATION_NAME}, start_new_session=tools.OWN_SESSION,
        )
        restore = subprocess.Popen(restore_argv, stdout=subprocess.PIPE, stderr=restore_err, env=env,
                                   start_new_session=tools.OWN_SESSION)
        assert psql.stdin is not None and restore.stdout is not None
        fed, shape = _feed(psql.stdin, prelude.encode(), restore.stdout)
        restore_rc = restore.wait()
        committed = False
        if fed and not shape and restore_rc == 0:
            committed = _write(psql.stdin, (epilogue + "COMMIT;\n").encode())
        try:
            psql.stdin.close()
        except BrokenPipeError:
            committed = False
        psql_rc = psql.wait()
        psql_err.seek(0)
        psql_text = psql_err.read().decode(errors="replace")
        if LOCK_WAIT_MARKER in psql_text:
            raise LockWaitTimedOut("lock-wait", tools.tool_failure("psql", psql_rc, psql_text), "")
        if fed and restore_rc != 0:  # psql took all pg_restore gave: pg_restore's failure comes first
            restore_err.seek(0)
            text = restore_err.read().decode(errors="replace")
            raise OperationFailed("restore-failed", tools.tool_failure("pg_restore", restore_rc, text), "")
        if shape:
            raise OperationFailed("restore-failed", shape, "")
        if psql_rc != 0 or not committed:
            raise OperationFailed("restore-failed", tools.tool_failure("psql", psql_rc, psql_text), "")
