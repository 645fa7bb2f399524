"""Rows lost since a backup: the tables whose count dropped below what the backup's metadata recorded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from migration_tools.backup import inventory, metadata, pitr_meta, validate
from migration_tools.backup.metadata import BackupMeta
from migration_tools.backup.pitr_meta import PitrMeta
from migration_tools.core.errors import KitError
from migration_tools.deploy.integrity.labels import is_allowed
from migration_tools.deploy.integrity.report import Loss


@dataclass(frozen=True)
class Baseline:
    name: str  # the dump's file name, or the restore point's metadata file (pgBackRest tier)
    meta: BackupMeta | PitrMeta
    note: str = ""  # said once in the report (e.g. a backup of another database)


def newest_valid(backups_dir: Path, database: str) -> Baseline | None:
    """The newest of: the newest dump of `database` that passes the shallow checks, and the
    newest restore point the pgBackRest tier recorded for it (its counts were read at the point)."""
    dump = _newest_valid_dump(backups_dir, database)
    point = next((m for _, m, _ in pitr_meta.all_points(Path(backups_dir), database) if m), None)
    if point is not None and (dump is None or point.created_at > dump.meta.created_at):
        return Baseline(point.file, point)
    return dump


def _newest_valid_dump(backups_dir: Path, database: str) -> Baseline | None:
    """The newest backup of `database` (by its metadata's time) that passes the shallow checks.

    Metadata is read for every backup, but only the newest are validated (SHA-256 and table of
    contents), until one passes: a directory of large backups costs one checksum, not all.
    """
    entries = []
    for dump in inventory.dump_candidates(Path(backups_dir)):
        with contextlib.suppress(KitError):
            meta = metadata.load(metadata.meta_path_for(dump))
            if meta.database == database:
                entries.append((meta.created, dump.name, dump, meta))
    for _created, _name, dump, meta in sorted(entries, reverse=True):
        try:
            if validate.validate(dump).ok:
                return Baseline(dump.name, meta)
        except KitError:
            continue
    return None


def named(text: str, backups_dir: Path, database: str) -> Baseline:
    """The backup `--against` names (a dump or its .json, in the backup directory or a path, or a
    restore point of the pgBackRest tier)."""
    if pitr_meta.MARKER in Path(text).name:
        point = pitr_meta.load(pitr_meta.path_for(Path(backups_dir), Path(text).name.removesuffix(".json")))
        note = "" if point.database == database else (
            f"{point.file} is a restore point of database '{point.database}', compared with '{database}'")
        return Baseline(point.file, point, note)
    dump = inventory.resolve(text, backups_dir, anywhere=True)
    meta = metadata.load(metadata.meta_path_for(dump))
    note = "" if meta.database == database else (
        f"{dump.name} is a backup of database '{meta.database}', compared with '{database}'")
    return Baseline(dump.name, meta, note)


def losses(
    before: dict[str, int], now: dict[str, int], estimated: Iterable[str], allowed: Iterable[str]
) -> list[Loss]:
    """Tables ('schema.table') of `before` with fewer rows `now`, in table order.

    A table named in `allowed` (bare or schema-qualified) is listed as allowed; a count the planner
    estimated is listed but never fails the check. Tables not in `now` are not losses here.
    """
    guessed, permitted = set(estimated), list(allowed)
    return [
        Loss(table, before[table], now[table], is_allowed(table, permitted), table in guessed)
        for table in sorted(before)
        if table in now and now[table] < before[table]
    ]


def gone(before: dict[str, int], existing: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """Tables of the backup that no longer exist (dropped by a migration or by hand), not allowed."""
    present, permitted = set(existing), list(allowed)
    return [t for t in sorted(before) if t not in present and not is_allowed(t, permitted)]
