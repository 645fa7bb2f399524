"""`backup`: a verified pg_dump, its rollback script and its metadata, or nothing at all.

1. Refuse early: client tools, connection, free space against pg_database_size.
2. Export a snapshot from a REPEATABLE READ transaction and keep it open; pg_dump runs with
   `--snapshot`, into `.<name>.partial`, while the same transaction counts rows and reads the
   applied migrations: the counts describe exactly what the dump holds.
3. The full read (backup.taking): `pg_restore -f /dev/null` decompresses every data block, fed
   the growing file while pg_dump writes (custom tier), or split over N readers after it (the
   directory tier of MIGRATION_KIT["BACKUP_FORMAT"], pg_dump -Fd -j N; backup.tiers).
4. Then SHA-256, `pg_restore --list` (TOC entries), optionally a deep test restore; fsync,
   rename, fsync the directory; the rollback script; the metadata last.
Any failure removes what this run wrote and raises OperationFailed (exit 1) naming the cause.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import psycopg

from migration_tools.backup import dumping, metadata, taking, tiers
from migration_tools.backup import script as rollback_script
from migration_tools.backup.deep import deep_check
from migration_tools.backup.metadata import BackupMeta
from migration_tools.backup.taking import Names
from migration_tools.core import signals
from migration_tools.core.errors import BadInput, OperationFailed, prog_name
from migration_tools.core.events import Event, Report, quiet
from migration_tools.core.redact import redact
from migration_tools.core.runtime import Kit
from migration_tools.pg import catalog, db, tools


@dataclass
class BackupResult:
    dump: Path
    meta: Path
    script: Path
    metadata: BackupMeta
    seconds: float


def profile() -> str:
    return "enhanced" if os.environ.get("PM_PROFILE") == "enhanced" else "standard"


def reserve_names(
    backups: Path, scripts: Path, prefix: str, moment: datetime, fmt: str = "custom"
) -> Names:
    """Pick `<prefix>_backup_<TS>[_n]` (.sql, or .dir for the directory tier) and create its
    hidden partial file (0600) or directory (0700), locked."""
    base = moment.strftime(metadata.TIMESTAMP_FORMAT)
    for n in range(1, 1000):
        stamp = base if n == 1 else f"{base}_{n}"
        dumps = [backups / metadata.dump_name(prefix, stamp, other) for other in metadata.SUFFIXES]
        dump = backups / metadata.dump_name(prefix, stamp, fmt)
        meta = metadata.meta_path_for(dump)
        script = metadata.script_path_for(dump, scripts)
        if any(d.exists() for d in dumps) or meta.exists() or script.exists():
            continue
        partial = metadata.partial_path_for(dump)
        try:
            # Held until the metadata is written: cleanup-backups leaves a locked partial alone.
            fd = tiers.reserve(partial, fmt == "directory")
        except FileExistsError:
            continue
        return Names(dump, meta, script, partial, fd)
    raise OperationFailed("backup-name", f"no free backup name for {base} in {backups}", "")


def _remove(*paths: Path) -> None:
    for path in paths:
        tiers.remove(path)


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
        settings = kit.settings
        names = reserve_names(backups, scripts, settings.backup_prefix, moment, settings.backup_format)
        try:
            meta = taking.dump_and_check(
                kit, conn, names, reason, moment, server_version, server_num, dump_version, report, profile()
            )
        except psycopg.Error as exc:
            _remove(names.partial)
            os.close(names.lock_fd)
            text = redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            kit.log.error("backup database error: %s", text)
            raise taking.fail("backup-db", f"the database failed during the backup: {text}") from exc
        except BaseException:
            _remove(names.partial)
            os.close(names.lock_fd)
            raise
    try:
        if deep:
            report(Event("step", "restoring into a scratch database to compare row counts ..."))
            check = deep_check(names.partial, meta, params, kit.settings.backup_jobs)
            for text in check.warnings:
                report(Event("warn", text))
                kit.log.warning("backup %s", text)
            if check.unavailable:
                text = (f"deep validation could not run ({check.unavailable}); "
                        "the backup is checked by its full read only")
                report(Event("warn", text))
                kit.log.warning("backup %s", text)
            elif not check.ok:
                raise taking.fail("backup-deep", f"deep validation failed: {check.reason}")
            else:
                report(Event("ok", check.passed[-1]))
                meta = _with_deep(meta)
        tiers.seal(names.partial, names.dump)
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
