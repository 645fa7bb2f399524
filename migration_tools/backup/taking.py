"""The middle of `backup`: pg_dump from the exported snapshot, its checks, and the metadata.

For the custom tier a follower feeds the growing file to `pg_restore -f /dev/null` while pg_dump
writes (the full read costs no extra wall time); the directory tier's files are written by
pg_dump's parallel workers, so its full read follows the dump, split over the same number of
pg_restore readers (backup.tiers.full_read). Row counts, applied migrations and write counters
are read in the snapshot's own transaction while pg_dump runs: they describe exactly what the
dump holds, whatever the tier (pg_dump's --jobs workers import that same snapshot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from migration_tools import __version__
from migration_tools.backup import dumping, metadata, tiers, validate
from migration_tools.backup.metadata import BackupMeta
from migration_tools.core.errors import OperationFailed, prog_name
from migration_tools.core.events import Event, Report
from migration_tools.core.redact import redact
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size
from migration_tools.pg import catalog, db


@dataclass
class Names:
    """A backup's reserved names: the dump, its metadata and script, the locked partial."""

    dump: Path
    meta: Path
    script: Path
    partial: Path
    lock_fd: int


def fail(error_id: str, message: str) -> OperationFailed:
    return OperationFailed(
        error_id, message, f"nothing was kept; fix the cause, then run {prog_name()} backup again"
    )


def dump_and_check(
    kit: Kit,
    conn: psycopg.Connection[Any],
    names: Names,
    reason: str,
    moment: datetime,
    server_version: str,
    server_num: int,
    dump_version: str,
    report: Report,
    profile: str,
) -> BackupMeta:
    params = kit.params
    fmt, jobs = kit.settings.backup_format, kit.settings.backup_jobs
    snapshot = str(db.scalar(conn, "SELECT pg_export_snapshot()"))
    how = "-Fd -Z9 -j" + str(jobs) if fmt == "directory" else "-Fc -Z9"
    report(Event("step", f"pg_dump {how} of {params.dbname} into {names.dump.name} ..."))
    kit.log.info("backup pg_dump started snapshot=%s format=%s jobs=%d file=%s", snapshot, fmt,
                 jobs if fmt == "directory" else 1, names.partial.name)
    dumped = time.monotonic()
    proc, dump_err = dumping.start_pg_dump(params, snapshot, names.partial, fmt, jobs)
    follower: dumping.FullReadFollower | None = None
    try:
        if fmt == "custom":
            follower = dumping.FullReadFollower(names.partial)
            follower.start()
        counts = catalog.exact_row_counts(conn)
        migrations = catalog.applied_migrations(conn)
        writes = catalog.write_counters(conn)
        code = proc.wait()
    except BaseException:
        dumping.stop(proc)
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
        raise fail("backup-dump", dumping.dump_failure(code, stderr))
    seconds = time.monotonic() - dumped
    problem = follower.result() if follower is not None else tiers.full_read(names.partial, jobs)
    if problem:
        kit.log.error("backup full read failed: %s", problem)
        raise fail("backup-full-read", f"the new dump does not read back: {problem}")
    size = tiers.size_of(names.partial)
    sha = tiers.sha256_of(names.partial, jobs)
    try:
        info = validate.archive_info(names.partial)
    except ValueError as exc:
        raise fail("backup-toc", f"the new dump's table of contents is unreadable: {exc}") from exc
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
        kit_profile=profile,
        validated={"full_read": True, "deep": False},
        format=fmt,
        tool_version=__version__,
    )
