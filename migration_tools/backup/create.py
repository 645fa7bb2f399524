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
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from migration_tools import __version__
from migration_tools.backup import dumping, metadata, validate
from migration_tools.backup import script as rollback_script
from migration_tools.backup.deep import deep_check
from migration_tools.backup.metadata import BackupMeta
from migration_tools.core import signals
from migration_tools.core.errors import BadInput, OperationFailed, prog_name
from migration_tools.core.events import Event, Report, quiet
from migration_tools.core.redact import redact
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size
from migration_tools.pg import catalog, db, tools


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


def profile() -> str:
    return "enhanced" if os.environ.get("PM_PROFILE") == "enhanced" else "standard"


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


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fail(error_id: str, message: str) -> OperationFailed:
    return OperationFailed(
        error_id, message, f"nothing was kept; fix the cause, then run {prog_name()} backup again"
    )


def create_backup(kit: Kit, reason: str, *, deep: bool = False, report: Report = quiet) -> BackupResult:
    """Take one backup; raises KitError (BadInput before anything is written, else OperationFailed).

    Interrupted (SIGINT, SIGTERM), it removes what it wrote (pg_dump is killed, a scratch database
    dropped) and says so.
    """
    try:
        return _create(kit, reason, deep=deep, report=report)
    except KeyboardInterrupt as exc:
        kit.log.error("backup interrupted by %s; nothing was kept", signals.describe(exc))
        raise OperationFailed(
            "backup-interrupted",
            f"the backup was interrupted by {signals.describe(exc)}; nothing was kept (pg_dump was "
            "stopped and its partial files removed)",
            f"run {prog_name()} backup again when ready",
        ) from exc


def _create(kit: Kit, reason: str, *, deep: bool, report: Report) -> BackupResult:
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

    with dumping.snapshot_session(params) as conn:
        server_version = str(db.scalar(conn, "SHOW server_version")).split()[0]
        server_num = db.server_version_num(conn)
        if dump_major < server_num // 10000:
            raise BadInput(
                "tools",
                f"pg_dump {dump_version} is older than the server ({server_version})",
                f"install PostgreSQL {server_num // 10000} client tools, then run {prog_name()} backup",
            )
        db_size = catalog.database_size(conn)
        warning = dumping.check_free_space(dumping.existing_dir(backups), db_size, params.dbname)
        if warning:
            report(Event("warn", warning))
            kit.log.warning("backup %s", warning)
        metadata.ensure_private_dir(backups)
        metadata.ensure_private_dir(scripts)
        moment = metadata.now_utc()
        names = reserve_names(backups, scripts, kit.settings.backup_prefix, moment)
        try:
            meta = _dump_and_check(
                kit, conn, names, reason, moment, server_version, server_num, dump_version, report
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
            report(Event("step", "restoring into a scratch database to compare row counts ..."))
            check = deep_check(names.partial, meta, params)
            for text in check.warnings:
                report(Event("warn", text))
                kit.log.warning("backup %s", text)
            if check.unavailable:
                text = (f"deep validation could not run ({check.unavailable}); "
                        "the backup is checked by its full read only")
                report(Event("warn", text))
                kit.log.warning("backup %s", text)
            elif not check.ok:
                raise _fail("backup-deep", f"deep validation failed: {check.reason}")
            else:
                report(Event("ok", check.passed[-1]))
                meta = _with_deep(meta)
        metadata.publish(names.partial, names.dump)
        rollback_script.write(meta, names.dump, names.script)
        report(Event("ok", f"rollback script: {_rel(names.script, kit.paths.root)}"))
        metadata.write(meta, names.meta)
        report(Event("ok", f"metadata: {_rel(names.meta, kit.paths.root)}"))
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
    report: Report,
) -> BackupMeta:
    params = kit.params
    snapshot = str(db.scalar(conn, "SELECT pg_export_snapshot()"))
    report(Event("step", f"pg_dump -Fc -Z9 of {params.dbname} into {names.dump.name} ..."))
    kit.log.info("backup pg_dump started snapshot=%s file=%s", snapshot, names.partial.name)
    dumped = time.monotonic()
    proc, dump_err = dumping.start_pg_dump(params, snapshot, names.partial)
    follower: dumping.FullReadFollower | None = None
    try:
        follower = dumping.FullReadFollower(names.partial)
        follower.start()
        counts = catalog.exact_row_counts(conn)
        migrations = catalog.applied_migrations(conn)
        writes = catalog.write_counters(conn)
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
        raise _fail("backup-dump", dumping.dump_failure(code, stderr))
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
    report(Event("ok", f"pg_dump: {human_size(size)}, {info.toc_entries} TOC entries in {seconds:.2f}s"))
    report(Event("ok", "full read: every data block decompresses (pg_restore -f /dev/null)"))
    report(Event("ok", f"row counts: {len(counts)} tables, {sum(counts.values()):,} rows, "
                       "from the dump's snapshot"))
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
        write_counters=writes,
        django_alias=kit.alias,
        kit_profile=profile(),
        validated={"full_read": True, "deep": False},
        tool_version=__version__,
    )
