"""The pgBackRest tier's metadata: one JSON file per restore point the kit created.

    backups/<prefix>_pitr_<TS>.json    written LAST, 0600, atomically (no file, no restore point)

It names the pgBackRest backup the point follows (stanza, label, type), the restore point (name,
LSN, time) and, read in the transaction that created the point, the applied migrations and
row counts the rollback verifies against. The bytes themselves are pgBackRest's, in its repository.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migration_tools.backup import metadata
from migration_tools.backup.metadata_rules import FORMAT_VERSION, REASONS, TOOL
from migration_tools.core.errors import BadInput

MARKER = "_pitr_"
SUFFIX = ".json"
FORMAT = "pgbackrest"


@dataclass(frozen=True)
class RestorePoint:
    name: str
    lsn: str
    time: str  # ISO 8601, the server's clock
    wal_file: str  # the WAL segment holding it (archived before the metadata was written)


@dataclass(frozen=True)
class PitrMeta:
    created_at: str
    reason: str
    database: str
    host: str
    port: int
    user: str
    server_version: str
    server_version_num: int
    stanza: str
    backup_label: str
    backup_type: str
    restore_point: RestorePoint
    applied_migrations: list[tuple[str, str]]
    row_counts: dict[str, int]
    django_alias: str
    databases: list[str] = field(default_factory=list)  # every database of the cluster then
    write_counters: dict[str, int] = field(default_factory=dict)
    format: str = FORMAT
    tool_version: str = ""
    tool: str = TOOL
    format_version: int = FORMAT_VERSION

    @property
    def file(self) -> str:
        return f"{self.restore_point.name}{SUFFIX}"

    @property
    def migration_count(self) -> int:
        return len(self.applied_migrations)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def is_pitr_name(name: str) -> bool:
    return MARKER in name and name.endswith(SUFFIX) and not metadata.is_partial_name(name)


def path_for(backups: Path, name: str) -> Path:
    return backups / f"{name}{SUFFIX}"


def point_name(prefix: str, stamp: str) -> str:
    return f"{prefix}{MARKER}{stamp}"


def load(path: Path) -> PitrMeta:
    """Parse one metadata file; BadInput naming what is wrong with it."""
    try:
        raw: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        point = RestorePoint(**raw.pop("restore_point"))
        raw["applied_migrations"] = [tuple(pair) for pair in raw["applied_migrations"]]
        meta = PitrMeta(restore_point=point, **raw)
    except FileNotFoundError as exc:
        raise BadInput("backup-missing", f"no restore point metadata {path}", metadata.LIST_HINT) from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BadInput("backup-metadata", f"{Path(path).name} is not restore point metadata of this "
                       f"kit ({exc})", metadata.LIST_HINT) from exc
    if meta.tool != TOOL or meta.format != FORMAT or meta.reason not in REASONS:
        raise BadInput("backup-metadata", f"{Path(path).name} is not restore point metadata of this kit",
                       metadata.LIST_HINT)
    return meta


def all_points(backups: Path, database: str | None = None) -> list[tuple[Path, PitrMeta | None, str]]:
    """(path, metadata or None, why not) for every restore point file, newest first."""
    if not backups.is_dir():
        return []
    found: list[tuple[Path, PitrMeta | None, str]] = []
    for path in backups.iterdir():
        if not is_pitr_name(path.name):
            continue
        try:
            meta = load(path)
        except BadInput as exc:
            found.append((path, None, exc.message))
            continue
        if database is None or meta.database == database:
            found.append((path, meta, ""))
    return sorted(found, key=lambda item: item[0].name, reverse=True)


def write(meta: PitrMeta, backups: Path) -> Path:
    path = path_for(backups, meta.restore_point.name)
    metadata.write_atomic(path, meta.to_json())
    return path
