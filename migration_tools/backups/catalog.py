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

from migration_tools.backups import metadata
from migration_tools.backups import validate
from migration_tools.backups.metadata import BackupMeta
from migration_tools.core.djangoenv import ConnParams
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
        try:
            return self.dump.stat().st_size
        except OSError:
            return 0


def _dump_candidates(backups_dir: Path) -> list[Path]:
    """Every `<prefix>_backup_<TS>.sql`, plus the dump a lone metadata file names."""
    if not backups_dir.is_dir():
        return []
    dumps = {p for p in backups_dir.iterdir() if p.is_file() and metadata.is_dump_name(p.name)}
    for meta in backups_dir.glob("*.json"):
        if metadata.is_dump_name(meta.with_suffix(".sql").name):
            dumps.add(meta.with_suffix(".sql"))
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
            "backup-path", f"'{text}' contains '..'; give a backup's file name from {base}", metadata.LIST_HINT
        )
    if raw.is_absolute():
        candidate = raw
    elif len(raw.parts) == 1 and (not anywhere or not (cwd or Path.cwd()).joinpath(raw).exists()):
        candidate = base / raw
    else:
        candidate = (cwd or Path.cwd()) / raw
    if candidate.suffix == ".json":
        candidate = candidate.with_suffix(".sql")
    resolved = candidate.resolve()
    if not anywhere and resolved.parent != base:
        raise BadInput("backup-path", f"'{text}' is not inside the backup directory {base}", metadata.LIST_HINT)
    if not resolved.is_file() and not metadata.meta_path_for(resolved).is_file():
        where = f"(looked at it and in {base})" if anywhere else f"in {base}"
        raise BadInput("backup-missing", f"backup '{text if anywhere else resolved.name}' not found {where}",
                       metadata.LIST_HINT)
    if resolved.suffix != ".sql":
        raise BadInput(
            "backup-name",
            f"'{resolved.name}' is not a backup dump (expected <prefix>_backup_<timestamp>.sql)",
            metadata.LIST_HINT,
        )
    return resolved


def entry_for(dump: Path, params: ConnParams | None = None, *, full: bool = False) -> BackupEntry:
    check = validate.validate(dump, full=full, params=params)
    meta = check.meta
    if meta is None:
        with contextlib.suppress(Exception):
            meta = metadata.load(metadata.meta_path_for(dump))
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
    paths = [entry.dump, metadata.meta_path_for(entry.dump)]
    with contextlib.suppress(Exception):
        paths.append(metadata.script_path_for(entry.dump, scripts_dir))
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
    return entry.meta is None and not metadata.meta_path_for(entry.dump).exists()


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
    moment = now or metadata.now_utc()
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
            plan.leftovers.append(metadata.meta_path_for(entry.dump))
        elif _interrupted(entry):
            (plan.busy if is_locked(entry.dump) else plan.leftovers).append(entry.dump)
        else:
            plan.invalid.append(entry)
    if Path(backups_dir).is_dir():
        for path in sorted(Path(backups_dir).iterdir()):
            if metadata.is_partial_name(path.name):
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
            stamps.add(metadata.timestamp_of(dump))
    for path in sorted(scripts_dir.iterdir()):
        name = path.name
        if metadata.is_partial_name(name):
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
            metadata.fsync_dir(directory)
    return removed
