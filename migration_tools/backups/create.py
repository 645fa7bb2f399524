"""`backup`: a verified pg_dump, its rollback script and its metadata, or nothing at all.

1. Refuse early: client tools, connection, free space against pg_database_size.
2. Export a snapshot from a REPEATABLE READ transaction and keep it open; pg_dump runs with
   `--snapshot`, into `.<name>.partial`, while the same transaction counts rows and reads the
   applied migrations: the counts describe exactly what the dump holds.
3. While pg_dump writes, a follower feeds the growing file to `pg_restore -f /dev/null`, which
   decompresses every data block (the full-read check costs no extra wall time).
4. Then SHA-256, `pg_restore --list` (TOC entries), optionally a deep test restore; fsync,
   rename, fsync the directory; the rollback script; the metadata last.
Any failure removes what this run wrote and raises OperationFailed (exit 1) naming the cause.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from migration_tools import __version__
from migration_tools.backups.deep import deep_check
from migration_tools.backups import metadata
from migration_tools.backups import validate
from migration_tools.pg import catalog, db
from migration_tools.pg import tools
from migration_tools.backups import script as rollback_script
from migration_tools.backups.metadata import BackupMeta
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import BadInput, OperationFailed, prog_name
from migration_tools.core.redact import redact
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size

FREE_FRACTION = 0.10  # a -Z9 dump below a tenth of pg_database_size is the usual case
FREE_HEADROOM = 1 << 20
LOCK_WAIT = "30s"
FOLLOW_CHUNK = 1 << 20
FOLLOW_POLL = 0.02

Step = Callable[[str, str], None]


@dataclass
class BackupResult:
    dump: Path
    meta: Path
    script: Path
    metadata: BackupMeta
    seconds: float


@dataclass
class _Names:
    dump: Path
    meta: Path
    script: Path
    partial: Path
    lock_fd: int


def _quiet(_event: str, _text: str) -> None:
    return None


def profile() -> str:
    return "enhanced" if os.environ.get("PM_PROFILE") == "enhanced" else "standard"


# -- checks before anything is written ---------------------------------------------------


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


def _existing(directory: Path) -> Path:
    """The directory, or its nearest existing parent (where it will be created)."""
    while not directory.exists() and directory.parent != directory:
        directory = directory.parent
    return directory


def os_free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


# -- names -------------------------------------------------------------------------------


def reserve_names(backups: Path, scripts: Path, prefix: str, moment: datetime) -> _Names:
    """Pick `<prefix>_backup_<TS>[_n]` and create its hidden partial file (0600, locked)."""
    base = moment.strftime(metadata.TIMESTAMP_FORMAT)
    for n in range(1, 1000):
        stamp = base if n == 1 else f"{base}_{n}"
        dump = backups / metadata.dump_name(prefix, stamp)
        meta = metadata.meta_path_for(dump)
        script = metadata.script_path_for(dump, scripts)
        if dump.exists() or meta.exists() or script.exists():
            continue
        partial = metadata.partial_path_for(dump)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, metadata.FILE_MODE)
        except FileExistsError:
            continue
        # Held until the metadata is written: cleanup-backups leaves a locked file alone.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _Names(dump, meta, script, partial, fd)
    raise OperationFailed("backup-name", f"no free backup name for {base} in {backups}", "")


# -- the snapshot transaction ------------------------------------------------------------


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


# -- pg_dump with a concurrent full read -------------------------------------------------


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


def dump_failure(code: int, stderr: str) -> str:
    text = tools.tool_failure("pg_dump", code, stderr)
    return f"{text} before the dump was complete" if code < 0 else text


def start_pg_dump(
    params: ConnParams, snapshot: str, target: Path
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    env = tools.tool_env(params)
    env["PGAPPNAME"] = "migration_kit:backup pg_dump"
    err = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    proc = subprocess.Popen(
        [
            str(tools.find_tool("pg_dump")),
            "--no-password",
            "--format=custom",
            "--compress=9",
            f"--snapshot={snapshot}",
            f"--lock-wait-timeout={LOCK_WAIT}",
            f"--file={target}",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    return proc, err


# -- the whole backup --------------------------------------------------------------------


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fail(error_id: str, message: str) -> OperationFailed:
    return OperationFailed(
        error_id, message, f"nothing was kept; fix the cause, then run {prog_name()} backup again"
    )


def create_backup(kit: Kit, reason: str, *, deep: bool = False, on_step: Step | None = None) -> BackupResult:
    """Take one backup; raises KitError (BadInput before anything is written, else OperationFailed)."""
    step = on_step or _quiet
    if reason not in metadata.REASONS:
        raise BadInput(
            "backup-reason",
            f"unknown backup reason '{reason}'",
            "use one of " + ", ".join(metadata.REASONS),
        )
    started = time.monotonic()
    params = kit.params
    tools.find_tool("pg_dump")
    tools.find_tool("pg_restore")
    dump_major, dump_version = tools.tool_major_version("pg_dump")
    backups, scripts = kit.paths.backups, kit.paths.rollback_scripts
    kit.log.info("backup start reason=%s database=%s deep=%s", reason, params.describe(), deep)

    with snapshot_session(params) as conn:
        server_version = str(db.scalar(conn, "SHOW server_version")).split()[0]
        server_num = db.server_version_num(conn)
        if dump_major < server_num // 10000:
            raise BadInput(
                "tools",
                f"pg_dump {dump_version} is older than the server ({server_version})",
                f"install PostgreSQL {server_num // 10000} client tools, then run {prog_name()} backup",
            )
        db_size = catalog.database_size(conn)
        warning = check_free_space(_existing(backups), db_size, params.dbname)
        if warning:
            step("warn", warning)
            kit.log.warning("backup %s", warning)
        metadata.ensure_private_dir(backups)
        metadata.ensure_private_dir(scripts)
        moment = metadata.now_utc()
        names = reserve_names(backups, scripts, kit.settings.backup_prefix, moment)
        try:
            meta = _dump_and_check(
                kit, conn, names, reason, moment, server_version, server_num, dump_version, step
            )
        except psycopg.Error as exc:
            _remove(names.partial)
            os.close(names.lock_fd)
            text = redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            kit.log.error("backup database error: %s", text)
            raise _fail("backup-db", f"the database failed during the backup: {text}") from exc
        except BaseException:
            _remove(names.partial)
            os.close(names.lock_fd)
            raise
    try:
        if deep:
            step("deep", "restoring into a scratch database to compare row counts ...")
            check = deep_check(names.partial, meta, params)
            for text in check.warnings:
                step("warn", text)
                kit.log.warning("backup %s", text)
            if not check.ok:
                raise _fail("backup-deep", f"deep validation failed: {check.reason}")
            step("ok", check.passed[-1])
            meta = _with_deep(meta)
        metadata.publish(names.partial, names.dump)
        rollback_script.write(meta, names.dump, names.script)
        step("ok", f"rollback script: {_rel(names.script, kit.paths.root)}")
        metadata.write(meta, names.meta)
        step("ok", f"metadata: {_rel(names.meta, kit.paths.root)}")
    except BaseException:
        _remove(
            names.partial,
            names.dump,
            names.script,
            names.meta,
            metadata.partial_path_for(names.script),
            metadata.partial_path_for(names.meta),
        )
        raise
    finally:
        os.close(names.lock_fd)
    seconds = time.monotonic() - started
    kit.log.info(
        "backup done file=%s size=%d sha256=%s seconds=%.2f", meta.file, meta.size_bytes, meta.sha256, seconds
    )
    return BackupResult(names.dump, names.meta, names.script, meta, seconds)


def _with_deep(meta: BackupMeta) -> BackupMeta:
    return replace(meta, validated={**meta.validated, "deep": True})


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _dump_and_check(
    kit: Kit,
    conn: psycopg.Connection[Any],
    names: _Names,
    reason: str,
    moment: datetime,
    server_version: str,
    server_num: int,
    dump_version: str,
    step: Step,
) -> BackupMeta:
    params = kit.params
    snapshot = str(db.scalar(conn, "SELECT pg_export_snapshot()"))
    step("live", f"pg_dump -Fc -Z9 of {params.dbname} into {names.dump.name} ...")
    kit.log.info("backup pg_dump started snapshot=%s file=%s", snapshot, names.partial.name)
    dumped = time.monotonic()
    proc, dump_err = start_pg_dump(params, snapshot, names.partial)
    follower: FullReadFollower | None = None
    try:
        follower = FullReadFollower(names.partial)
        follower.start()
        counts = catalog.exact_row_counts(conn)
        migrations = catalog.applied_migrations(conn)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        if follower is not None:
            follower.abort()
        dump_err.close()
        raise
    dump_err.seek(0)
    stderr = redact(dump_err.read().decode(errors="replace"))
    dump_err.close()
    if follower is not None:
        follower.writer_done.set()
    if code != 0:
        if follower is not None:
            follower.abort()
        kit.log.error("backup pg_dump failed code=%d stderr=%s", code, stderr.strip())
        raise _fail("backup-dump", dump_failure(code, stderr))
    seconds = time.monotonic() - dumped
    assert follower is not None
    problem = follower.result()
    if problem:
        kit.log.error("backup full read failed: %s", problem)
        raise _fail("backup-full-read", f"the new dump does not read back: {problem}")
    size = names.partial.stat().st_size
    sha = validate.sha256_file(names.partial)
    try:
        info = validate.archive_info(names.partial)
    except ValueError as exc:
        raise _fail("backup-toc", f"the new dump's table of contents is unreadable: {exc}") from exc
    step("ok", f"pg_dump: {human_size(size)}, {info.toc_entries} TOC entries in {seconds:.2f}s")
    step("ok", "full read: every data block decompresses (pg_restore -f /dev/null)")
    step("ok", f"row counts: {len(counts)} tables, {sum(counts.values()):,} rows, from the dump's snapshot")
    kit.log.info(
        "backup dumped size=%d toc=%d tables=%d seconds=%.2f", size, info.toc_entries, len(counts), seconds
    )
    return BackupMeta(
        created_at=metadata.iso(moment),
        reason=reason,
        database=params.dbname,
        host=params.host,
        port=params.port,
        user=params.user,
        server_version=server_version,
        server_version_num=server_num,
        pg_dump_version=dump_version,
        file=names.dump.name,
        size_bytes=size,
        sha256=sha,
        toc_entries=info.toc_entries,
        applied_migrations=migrations,
        row_counts=counts,
        django_alias=kit.alias,
        kit_profile=profile(),
        validated={"full_read": True, "deep": False},
        tool_version=__version__,
    )
