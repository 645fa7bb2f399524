"""Retention: which backups cleanup-backups removes, as a plan printed before anything is removed.

Per database: each database's newest `keep` valid backups stay, and the newest valid backup of
any database is never removed. Files or directories being written (hidden `.<name>.partial`,
locked by the running backup) are left alone; leftovers of interrupted backups go (a directory
backup with every file in it). The same rule
(`beyond_retention`) decides which kept replaced databases go (backup.side_databases).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from migration_tools.backup import metadata, tiers
from migration_tools.backup.inventory import BackupEntry, dump_candidates, list_backups


@dataclass
class CleanupPlan:
    """What cleanup-backups would do: a value, printable as a dry run, with no side effects."""

    remove: list[BackupEntry] = field(default_factory=list)
    keep: list[BackupEntry] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    busy: list[Path] = field(default_factory=list)
    invalid: list[BackupEntry] = field(default_factory=list)


def files_of(entry: BackupEntry, scripts_dir: Path) -> list[Path]:
    """A backup's dump (file or directory), metadata and rollback script: removed together."""
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


def beyond_retention(
    index: int, created: datetime, *, keep: int, older_than_days: float | None, now: datetime
) -> bool:
    """The one retention rule, for backups and kept databases alike: the item at `index` among its
    database's (0 = the newest) goes when it is beyond the newest `keep` and, if an age is given,
    older than that many days."""
    old_enough = older_than_days is None or now - created > timedelta(days=older_than_days)
    return index >= keep and old_enough


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
    seen_per_database: dict[str, int] = {}
    for entry in (e for e in entries if e.valid):
        database = entry.meta.database if entry.meta else ""
        index = seen_per_database.get(database, 0)
        seen_per_database[database] = index + 1
        if beyond_retention(index, entry.created, keep=keep, older_than_days=older_than_days, now=moment):
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
    for dump in dump_candidates(backups_dir):
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
        if tiers.remove(path):  # a file, or a directory backup with its files
            removed.append(path)
    for directory in {p.parent for p in removed}:
        with contextlib.suppress(OSError):
            metadata.fsync_dir(directory)
    return removed
