"""The backups directory as a list: what is there, what is valid, what retention may remove.

Order is by the metadata's creation time, never by file name. Files being written (hidden
`.<name>.partial`) are not backups; the backup in progress holds an flock on its partial
dump until its metadata is written, so cleanup tells a running backup from a dead one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from migration_tools import backup_meta, backup_validate
from migration_tools.backup_meta import BackupMeta
from migration_tools.djangoenv import ConnParams


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
        try:
            return self.dump.stat().st_size
        except OSError:
            return 0


def _dump_candidates(backups_dir: Path) -> list[Path]:
    """Every `<prefix>_backup_<TS>.sql`, plus the dump a lone metadata file names."""
    if not backups_dir.is_dir():
        return []
    dumps = {p for p in backups_dir.iterdir() if p.is_file() and backup_meta.is_dump_name(p.name)}
    for meta in backups_dir.glob("*.json"):
        if backup_meta.is_dump_name(meta.with_suffix(".sql").name):
            dumps.add(meta.with_suffix(".sql"))
    return list(dumps)


def entry_for(dump: Path, params: ConnParams | None = None, *, full: bool = False) -> BackupEntry:
    check = backup_validate.validate(dump, full=full, params=params)
    meta = check.meta
    if meta is None:
        with contextlib.suppress(Exception):
            meta = backup_meta.load(backup_meta.meta_path_for(dump))
    return BackupEntry(dump, meta, check.ok, check.reason)


def list_backups(backups_dir: Path, params: ConnParams | None = None) -> list[BackupEntry]:
    """Every backup in the directory, newest first by metadata created_at, shallow-validated."""
    entries = [entry_for(dump, params) for dump in _dump_candidates(Path(backups_dir))]
    return sorted(entries, key=lambda e: (e.created, e.dump.name), reverse=True)


def newest_valid(backups_dir: Path, params: ConnParams | None = None) -> BackupEntry | None:
    for entry in list_backups(backups_dir, params):
        if entry.valid:
            return entry
    return None


# -- retention ---------------------------------------------------------------------------


@dataclass
class CleanupPlan:
    """What cleanup-backups would do: a value, printable as a dry run, with no side effects."""

    remove: list[BackupEntry] = field(default_factory=list)
    keep: list[BackupEntry] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    busy: list[Path] = field(default_factory=list)
    invalid: list[BackupEntry] = field(default_factory=list)


def files_of(entry: BackupEntry, scripts_dir: Path) -> list[Path]:
    """A backup's dump, metadata and rollback script: removed together."""
    paths = [entry.dump, backup_meta.meta_path_for(entry.dump)]
    with contextlib.suppress(Exception):
        paths.append(backup_meta.script_path_for(entry.dump, scripts_dir))
    return paths


def is_locked(path: Path) -> bool:
    """True while a running backup holds the file (see backup.reserve_names)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _interrupted(entry: BackupEntry) -> bool:
    """A dump with no metadata file at all: what an interrupted backup leaves."""
    return entry.meta is None and not backup_meta.meta_path_for(entry.dump).exists()


def plan_cleanup(
    backups_dir: Path,
    scripts_dir: Path,
    *,
    keep: int,
    older_than_days: float | None = None,
    now: datetime | None = None,
) -> CleanupPlan:
    """Keep the newest `keep` valid backups; the rest go when also older than the age, if given.

    Only valid, complete backups count and are removed by retention; the newest valid one is
    never removed. Leftovers of interrupted backups (partial files, dumps without metadata,
    orphaned rollback scripts) are removed unless a running backup holds them. Complete but
    invalid backups are kept and reported: they may be evidence.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    moment = now or backup_meta.now_utc()
    plan = CleanupPlan()
    entries = list_backups(backups_dir)
    valid = [e for e in entries if e.valid]
    for index, entry in enumerate(valid):
        old_enough = older_than_days is None or moment - entry.created > timedelta(days=older_than_days)
        if index >= keep and old_enough:
            plan.remove.append(entry)
        else:
            plan.keep.append(entry)
    for entry in entries:
        if entry.valid:
            continue
        if not entry.dump.exists():
            plan.leftovers.append(backup_meta.meta_path_for(entry.dump))
        elif _interrupted(entry):
            (plan.busy if is_locked(entry.dump) else plan.leftovers).append(entry.dump)
        else:
            plan.invalid.append(entry)
    if Path(backups_dir).is_dir():
        for path in sorted(Path(backups_dir).iterdir()):
            if backup_meta.is_partial_name(path.name):
                (plan.busy if is_locked(path) else plan.leftovers).append(path)
    plan.leftovers.extend(_orphan_scripts(Path(backups_dir), Path(scripts_dir)))
    return plan


def _orphan_scripts(backups_dir: Path, scripts_dir: Path) -> list[Path]:
    """Rollback scripts whose backup is gone, and partial scripts."""
    if not scripts_dir.is_dir():
        return []
    orphans = []
    stamps = set()
    for dump in _dump_candidates(backups_dir):
        if not dump.exists():
            continue
        with contextlib.suppress(Exception):
            stamps.add(backup_meta.timestamp_of(dump))
    for path in sorted(scripts_dir.iterdir()):
        name = path.name
        if backup_meta.is_partial_name(name):
            if not is_locked(path):
                orphans.append(path)
        elif name.startswith("rollback_") and name.endswith(".sh"):
            stamp = name[len("rollback_") : -len(".sh")]
            if stamp not in stamps:
                orphans.append(path)
    return orphans


def apply_cleanup(plan: CleanupPlan, scripts_dir: Path) -> list[Path]:
    """Remove what the plan says; returns the files removed."""
    removed = []
    targets = [p for e in plan.remove for p in files_of(e, scripts_dir)] + plan.leftovers
    for path in targets:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    for directory in {p.parent for p in removed}:
        with contextlib.suppress(OSError):
            backup_meta.fsync_dir(directory)
    return removed
