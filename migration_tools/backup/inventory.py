"""The backups directory as a list: what is there, what is valid, what retention may remove.

Order is by the metadata's creation time, never by file name. Files being written (hidden
`.<name>.partial`) are not backups; the backup in progress holds an flock on its partial
dump until its metadata is written, so cleanup tells a running backup from a dead one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from migration_tools.backup import metadata, tiers, validate
from migration_tools.backup.metadata import BackupMeta
from migration_tools.core.errors import BadInput


@dataclass
class BackupEntry:
    dump: Path
    meta: BackupMeta | None
    valid: bool
    reason: str

    @property
    def created(self) -> datetime:
        """The metadata's creation time; the file's mtime when there is no metadata."""
        if self.meta is not None:
            return self.meta.created
        with contextlib.suppress(OSError):
            return datetime.fromtimestamp(self.dump.stat().st_mtime, timezone.utc)
        return datetime.fromtimestamp(0, timezone.utc)

    @property
    def size(self) -> int:
        """The file's size, or the sum of a directory backup's files."""
        try:
            return tiers.size_of(self.dump)
        except OSError:
            return 0


def dump_for_meta(meta_path: Path) -> Path:
    """The dump a metadata file belongs to: `<name>.dir` when that directory is there, else `.sql`."""
    directory = meta_path.with_suffix(metadata.SUFFIXES["directory"])
    return directory if directory.is_dir() else meta_path.with_suffix(metadata.SUFFIXES["custom"])


def dump_candidates(backups_dir: Path) -> list[Path]:
    """Every `<prefix>_backup_<TS>.sql` file and `.dir` directory, plus the dump a lone metadata
    file names."""
    if not backups_dir.is_dir():
        return []
    dumps = {p for p in backups_dir.iterdir() if metadata.is_dump_name(p.name) and tiers.present(p)}
    for meta in backups_dir.glob("*.json"):
        if metadata.is_dump_name(dump_for_meta(meta).name):
            dumps.add(dump_for_meta(meta))
    return list(dumps)


def resolve(text: str, backups_dir: Path, *, anywhere: bool = False, cwd: Path | None = None) -> Path:
    """The dump that TEXT names: a backup's file name (its .sql, or its .json) in the backup
    directory, or a path to one.

    Restoring takes only backups inside the backup directory. Validating (`anywhere=True`)
    changes nothing, so it also takes a path to a copy kept elsewhere.
    """
    raw = Path(text)
    base = Path(backups_dir).resolve()
    if ".." in raw.parts and not anywhere:
        raise BadInput(
            "backup-path", f"'{text}' contains '..'; give a backup's file name from {base}",
            metadata.LIST_HINT,
        )
    if raw.is_absolute():
        candidate = raw
    elif len(raw.parts) == 1 and (not anywhere or not (cwd or Path.cwd()).joinpath(raw).exists()):
        candidate = base / raw
    else:
        candidate = (cwd or Path.cwd()) / raw
    if candidate.suffix == ".json":
        candidate = dump_for_meta(candidate)
    resolved = candidate.resolve()
    if not anywhere and resolved.parent != base:
        raise BadInput(
            "backup-path", f"'{text}' is not inside the backup directory {base}", metadata.LIST_HINT
        )
    if not resolved.exists() and not metadata.meta_path_for(resolved).is_file():
        where = f"(looked at it and in {base})" if anywhere else f"in {base}"
        raise BadInput("backup-missing", f"backup '{text if anywhere else resolved.name}' not found {where}",
                       metadata.LIST_HINT)
    if resolved.suffix not in metadata.FORMAT_OF_SUFFIX:
        raise BadInput(
            "backup-name",
            f"'{resolved.name}' is not a backup dump (expected {metadata.NAME_PATTERN})",
            metadata.LIST_HINT,
        )
    return resolved


def entry_for(dump: Path) -> BackupEntry:
    check = validate.validate(dump)
    meta = check.meta
    if meta is None:
        with contextlib.suppress(Exception):
            meta = metadata.load(metadata.meta_path_for(dump))
    return BackupEntry(dump, meta, check.ok, check.reason)


def list_backups(backups_dir: Path, database: str | None = None) -> list[BackupEntry]:
    """Backups in the directory, newest first by metadata created_at, shallow-validated.

    With `database`, only that database's backups, and those whose metadata cannot be read (they
    may be anyone's, so they are shown rather than hidden).
    """
    entries = [entry_for(dump) for dump in dump_candidates(Path(backups_dir))]
    if database is not None:
        entries = [e for e in entries if e.meta is None or e.meta.database == database]
    return sorted(entries, key=lambda e: (e.created, e.dump.name), reverse=True)


def newest_valid(backups_dir: Path, database: str) -> BackupEntry | None:
    """The newest backup of `database` that passes the shallow checks, or None."""
    for entry in list_backups(backups_dir, database):
        if entry.valid and entry.meta is not None:
            return entry
    return None
