"""The dump itself: free space checked first, a snapshot transaction, pg_dump with a concurrent full read.

While pg_dump writes the file, a follower feeds the growing file to `pg_restore -f /dev/null`,
which decompresses every data block: the full-read check costs no extra wall time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg

from migration_tools.backup import tiers
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import OperationFailed, prog_name
from migration_tools.core.sizes import human_size
from migration_tools.pg import db, tools

FREE_FRACTION = 0.10  # a -Z9 dump below a tenth of pg_database_size is the usual case
FREE_HEADROOM = 1 << 20
LOCK_WAIT = "30s"
FOLLOW_CHUNK = 1 << 20
FOLLOW_POLL = 0.02


def needed_space(db_size: int) -> int:
    """The least free space a dump of a database this size can possibly need."""
    return int(db_size * FREE_FRACTION) + FREE_HEADROOM


def check_free_space(directory: Path, db_size: int, dbname: str) -> str:
    """Refuse when the dump obviously cannot fit; returns a warning when it might not."""
    free = os_free_bytes(directory)
    need = needed_space(db_size)
    if free < need:
        raise OperationFailed(
            "disk-space",
            f"not enough free space in {directory}: {human_size(free)} free, a backup of database "
            f"'{dbname}' ({human_size(db_size)}) needs at least {human_size(need)}",
            "free some space or remove old backups (python rollback_manager.py cleanup-backups), "
            f"then run {prog_name()} backup",
        )
    if free < db_size:
        return (
            f"only {human_size(free)} free in {directory} for a database of {human_size(db_size)}; "
            "the dump may not fit if the data compresses badly"
        )
    return ""


def existing_dir(directory: Path) -> Path:
    """The directory, or its nearest existing parent (where it will be created)."""
    while not directory.exists() and directory.parent != directory:
        directory = directory.parent
    return directory


def os_free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


@contextlib.contextmanager
def snapshot_session(params: ConnParams) -> Iterator[psycopg.Connection[Any]]:
    """A REPEATABLE READ, READ ONLY transaction kept open until the block ends."""
    conn = db.connect(params, autocommit=False, purpose="backup snapshot")
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
        yield conn
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        conn.close()


class FullReadFollower(threading.Thread):
    """Feed a file that pg_dump is still writing to `pg_restore -f /dev/null`."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.writer_done = threading.Event()
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in result())
        self.proc = subprocess.Popen(
            [str(tools.find_tool("pg_restore")), "-f", os.devnull],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=tools.OWN_SESSION,
        )
        self.broken = False

    def run(self) -> None:
        assert self.proc.stdin is not None
        try:
            with open(self.path, "rb") as source:
                while True:
                    done = self.writer_done.is_set()
                    chunk = source.read(FOLLOW_CHUNK)
                    if chunk:
                        self.proc.stdin.write(chunk)
                        continue
                    if done:
                        break
                    self.writer_done.wait(FOLLOW_POLL)
        except (BrokenPipeError, OSError):
            self.broken = True
        finally:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def result(self) -> str:
        """'' when pg_restore read the whole stream, else its error."""
        self.join()
        code = self.proc.wait()
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        if code == 0 and not self.broken:
            return ""
        return tools.tool_failure("pg_restore", code, text)

    def abort(self) -> None:
        self.writer_done.set()
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.result()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill pg_dump and, for the directory tier, its --jobs workers (its own process group), then reap it."""
    try:
        if tools.OWN_SESSION:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def dump_failure(code: int, stderr: str) -> str:
    text = tools.tool_failure("pg_dump", code, stderr)
    return f"{text} before the dump was complete" if code < 0 else text


def start_pg_dump(
    params: ConnParams, snapshot: str, target: Path, fmt: str = "custom", jobs: int = 1
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """pg_dump of the exported snapshot into `target` (a file, or an empty directory for the
    directory tier, whose --jobs workers all import that same snapshot); files it creates are
    owner-only (umask 077)."""
    env = tools.tool_env(params)
    env["PGAPPNAME"] = "migration_kit:backup pg_dump"
    err = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    proc = subprocess.Popen(
        [
            str(tools.find_tool("pg_dump")),
            "--no-password",
            *tiers.pg_dump_args(fmt, jobs),
            f"--snapshot={snapshot}",
            f"--lock-wait-timeout={LOCK_WAIT}",
            f"--file={target}",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=tools.OWN_SESSION,
        umask=0o077,
    )
    return proc, err
