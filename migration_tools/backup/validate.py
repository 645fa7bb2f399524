"""Is a backup restorable? Shallow, full-read and deep checks of one dump against its metadata.

shallow: metadata present and well formed, consistent with the file (name, size, SHA-256) and
         with the archive's own header (`pg_restore --list`: TOC entries, database, versions).
full:    also `pg_restore -f /dev/null`, which decompresses every data block. `--list` reads only
         the table of contents and accepts an archive truncated to half or with flipped bytes.
deep:    (backup.deep) also a real restore into a scratch database.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from migration_tools.backup import metadata, tiers
from migration_tools.backup.metadata import BackupMeta
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError
from migration_tools.pg import tools


@dataclass
class Validation:
    ok: bool
    reason: str
    meta: BackupMeta | None
    passed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unavailable: str = ""  # why a deep check could not run (then ok says nothing about it)


@dataclass(frozen=True)
class ArchiveInfo:
    """What `pg_restore --list` says about an archive."""

    toc_entries: int
    dbname: str
    compression: str
    server_version: str
    pg_dump_version: str
    fmt: str


sha256_file = tiers.sha256_file


def _header_value(text: str, key: str) -> str:
    match = re.search(rf"^;\s+{re.escape(key)}:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def archive_info(dump: Path) -> ArchiveInfo:
    """Read the archive's header and TOC; raises ValueError with pg_restore's message."""
    result = subprocess.run(
        [str(tools.find_tool("pg_restore")), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=tools.OWN_SESSION,
    )
    if result.returncode != 0:
        raise ValueError(tools.first_error_line(result.stderr))
    out = result.stdout
    entries = _header_value(out, "TOC Entries")
    if not entries.isdigit():
        raise ValueError("pg_restore --list printed no TOC entry count")
    return ArchiveInfo(
        toc_entries=int(entries),
        dbname=_header_value(out, "dbname"),
        compression=_header_value(out, "Compression"),
        server_version=_header_value(out, "Dumped from database version").split(" ")[0],
        pg_dump_version=_header_value(out, "Dumped by pg_dump version").split(" ")[0],
        fmt=_header_value(out, "Format"),
    )


def full_read(dump: Path, jobs: int = 1) -> str:
    """'' when every data block decompresses (`pg_restore -f /dev/null`), else the error."""
    return tiers.full_read(dump, jobs)


def header_mismatch(meta: BackupMeta, info: ArchiveInfo) -> str:
    """How the metadata contradicts the archive's own header, or ''."""
    if info.toc_entries != meta.toc_entries:
        return f"the archive has {info.toc_entries} TOC entries, the metadata says {meta.toc_entries}"
    if info.dbname != meta.database:
        return f"the archive is of database '{info.dbname}', the metadata says '{meta.database}'"
    if info.fmt and info.fmt != meta.format.upper():
        return f"the archive's format is {info.fmt}, the metadata says {meta.format}"
    if info.compression.isdigit() and int(info.compression) != meta.compression:
        return f"the archive's compression is {info.compression}, the metadata says {meta.compression}"
    if info.pg_dump_version and info.pg_dump_version != meta.pg_dump_version:
        return (
            f"the archive was written by pg_dump {info.pg_dump_version}, "
            f"the metadata says {meta.pg_dump_version}"
        )
    if info.server_version and info.server_version != meta.server_version:
        return f"the archive is from server {info.server_version}, the metadata says {meta.server_version}"
    return ""


def _invalid(reason: str, meta: BackupMeta | None = None, passed: list[str] | None = None) -> Validation:
    return Validation(False, reason, meta, passed or [])


def validate(
    dump_path: Path,
    *,
    full: bool = False,
    params: ConnParams | None = None,
    jobs: int = 1,
) -> Validation:
    """Check one backup; never raises for a bad backup, only returns ok=False and the reason.

    `jobs`: how many threads hash a directory backup's files, and pg_restore processes read it.
    """
    dump = Path(dump_path)
    if not tiers.present(dump):
        kind = "dump directory" if tiers.is_directory(dump) else "dump file"
        return _invalid(f"{kind} {dump.name} is missing")
    try:
        meta = metadata.load(metadata.meta_path_for(dump))
    except KitError as exc:
        return _invalid(exc.message)
    passed = ["metadata present and well formed"]
    if meta.file != dump.name:
        return _invalid(f"the metadata names file {meta.file}, not {dump.name}", meta, passed)
    size = tiers.size_of(dump)
    if size != meta.size_bytes:
        return _invalid(
            f"size is {size:,} bytes but the metadata says {meta.size_bytes:,} (truncated or replaced)",
            meta,
            passed,
        )
    if tiers.sha256_of(dump, jobs) != meta.sha256:
        what = "a file in the directory" if dump.is_dir() else "the file"
        return _invalid(
            f"SHA-256 does not match the metadata ({what} changed since the backup)", meta, passed
        )
    files = f", {len(tiers.members(dump))} files" if dump.is_dir() else ""
    passed.append(f"size and SHA-256 match ({size:,} bytes{files})")
    try:
        info = archive_info(dump)
    except ValueError as exc:
        return _invalid(f"the table of contents is unreadable: {exc}", meta, passed)
    mismatch = header_mismatch(meta, info)
    if mismatch:
        return _invalid(mismatch, meta, passed)
    passed.append(f"table of contents readable ({info.toc_entries} entries, database '{info.dbname}')")
    if params is not None and params.dbname != meta.database:
        return _invalid(
            f"this is a backup of database '{meta.database}' on {meta.host}:{meta.port}, "
            f"not of the current database '{params.dbname}'",
            meta,
            passed,
        )
    if full:
        problem = full_read(dump, jobs)
        if problem:
            return _invalid(f"a full read of the data failed: {problem}", meta, passed)
        passed.append("every data block reads back (pg_restore -f /dev/null)")
    return Validation(True, "", meta, passed)
