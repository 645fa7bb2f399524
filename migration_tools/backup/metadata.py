"""A backup's metadata file: the contract between `backup`, the catalog and the rollback manager.

Layout, for one backup taken at UTC time <TS> (`%Y%m%d_%H%M%S`, then `_2`, `_3`... on a clash):

    backups/<prefix>_backup_<TS>.sql        pg_dump custom format, -Z9 (BACKUP_FORMAT "custom")
    backups/<prefix>_backup_<TS>.dir/       or pg_dump directory format, -Z9 -j N ("directory")
    backups/<prefix>_backup_<TS>.json       this metadata, written LAST (no metadata, no backup)
    rollback_scripts/rollback_<TS>.sh       a standalone restore script

While a file (or the directory) is being written it is called `.<name>.partial` in the same
directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from migration_tools.backup import metadata_rules
from migration_tools.backup.metadata_rules import FORMAT_VERSION, REASONS, REQUIRED_KEYS, TOOL
from migration_tools.core.errors import BadInput

__all__ = ["FORMAT_VERSION", "REASONS", "REQUIRED_KEYS", "TOOL"]

TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
BACKUP_MARKER = "_backup_"
PARTIAL_SUFFIX = ".partial"
FILE_MODE = 0o600
DIR_MODE = 0o700
LIST_HINT = "run python rollback_manager.py list-backups to see the valid backups"
# Optional extra key: SHA-256 of the canonical JSON of every other key, so a hand edit shows.
CHECKSUM_KEY = "metadata_sha256"


@dataclass(frozen=True)
class BackupMeta:
    """Everything the kit records about one backup (the JSON keys, one to one)."""

    created_at: str
    reason: str
    database: str
    host: str
    port: int
    user: str
    server_version: str
    server_version_num: int
    pg_dump_version: str
    file: str
    size_bytes: int
    sha256: str
    toc_entries: int
    applied_migrations: list[tuple[str, str]]
    row_counts: dict[str, int]
    django_alias: str
    kit_profile: str
    validated: dict[str, bool] = field(default_factory=lambda: {"full_read": True, "deep": False})
    snapshot_consistent: bool = True
    # Optional: rows written per table by then (pg_stat_user_tables), to tell later writes apart.
    write_counters: dict[str, int] = field(default_factory=dict)
    format: str = "custom"
    compression: int = 9
    tool_version: str = ""
    tool: str = TOOL
    format_version: int = FORMAT_VERSION

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def migration_count(self) -> int:
        return len(self.applied_migrations)

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["applied_migrations"] = [list(pair) for pair in self.applied_migrations]
        return raw

    def to_json(self) -> str:
        raw = self.to_dict()
        raw[CHECKSUM_KEY] = content_checksum(raw)
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"


def content_checksum(raw: dict[str, Any]) -> str:
    """SHA-256 of the metadata without its own checksum key, in canonical JSON."""
    body = {k: v for k, v in raw.items() if k != CHECKSUM_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)



def iso(moment: datetime) -> str:
    """UTC ISO 8601 with offset and microseconds: 2026-11-25T18:15:00.123456+00:00."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")



def from_dict(raw: Any) -> BackupMeta:
    """Build a BackupMeta from parsed JSON; raises ValueError naming the problem."""
    if not isinstance(raw, dict):
        raise ValueError("the file does not hold a JSON object")
    wrong = metadata_rules.problem(raw)
    if wrong:
        raise ValueError(wrong)
    recorded = raw.get(CHECKSUM_KEY)
    if recorded is not None and recorded != content_checksum(raw):
        raise ValueError(f"it was edited after the backup ({CHECKSUM_KEY} does not match its content)")
    values = {key: raw[key] for key in REQUIRED_KEYS}
    values["applied_migrations"] = [(str(a), str(n)) for a, n in raw["applied_migrations"]]
    values["row_counts"] = {str(k): int(v) for k, v in raw["row_counts"].items()}
    values["validated"] = {str(k): bool(v) for k, v in raw["validated"].items()}
    values["write_counters"] = {str(k): int(v) for k, v in raw.get("write_counters", {}).items()}
    return BackupMeta(**values)


def load(json_path: Path) -> BackupMeta:
    """Read and check a metadata file; raises BadInput 'backup-metadata' when missing or invalid."""
    json_path = Path(json_path)
    try:
        text = json_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BadInput(
            "backup-metadata",
            f"metadata file {json_path.name} is missing (a dump without metadata is not a backup)",
            LIST_HINT,
        ) from exc
    except OSError as exc:
        raise BadInput(
            "backup-metadata", f"cannot read metadata file {json_path.name}: {exc.strerror}", LIST_HINT
        ) from exc
    try:
        return from_dict(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise BadInput(
            "backup-metadata", f"metadata file {json_path.name} is invalid: {exc}", LIST_HINT
        ) from exc


# -- names -----------------------------------------------------------------------------


# The backup's name ends with its format's suffix: one file, or one directory.
SUFFIXES = metadata_rules.FORMATS
FORMAT_OF_SUFFIX = {suffix: fmt for fmt, suffix in SUFFIXES.items()}
NAME_PATTERN = f"<prefix>{BACKUP_MARKER}<timestamp>.sql or .dir"


def dump_name(prefix: str, stamp: str, fmt: str = "custom") -> str:
    return f"{prefix}{BACKUP_MARKER}{stamp}{SUFFIXES[fmt]}"


def is_dump_name(name: str) -> bool:
    return Path(name).suffix in FORMAT_OF_SUFFIX and BACKUP_MARKER in name and not name.startswith(".")


def format_of(dump_path: Path) -> str:
    """'custom' for `<...>.sql`, 'directory' for `<...>.dir` (any other name: 'custom')."""
    return FORMAT_OF_SUFFIX.get(Path(dump_path).suffix, "custom")


def timestamp_of(dump_path: Path) -> str:
    """The <TS> part of `<prefix>_backup_<TS>.sql` or `.dir` (with any `_2` suffix)."""
    name = Path(dump_path).name
    if not is_dump_name(name):
        raise BadInput(
            "backup-name",
            f"'{name}' is not a backup file name (expected {NAME_PATTERN})",
            LIST_HINT,
        )
    return Path(name).stem.rpartition(BACKUP_MARKER)[2]


def meta_path_for(dump_path: Path) -> Path:
    return Path(dump_path).with_suffix(".json")


def script_path_for(dump_path: Path, scripts_dir: Path) -> Path:
    """rollback_scripts/rollback_<TS>.sh for backups/<prefix>_backup_<TS>.sql."""
    return Path(scripts_dir) / f"rollback_{timestamp_of(dump_path)}.sh"


def partial_path_for(final_path: Path) -> Path:
    """The hidden name a file has while it is written: `.<name>.partial` beside it."""
    final_path = Path(final_path)
    return final_path.with_name(f".{final_path.name}{PARTIAL_SUFFIX}")


def is_partial_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX)


# -- durable files ---------------------------------------------------------------------


def ensure_private_dir(directory: Path) -> Path:
    """Create the directory (0700) if needed and tighten its mode if it exists."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(directory, DIR_MODE)
    return directory


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(partial: Path, final: Path, mode: int = FILE_MODE) -> None:
    """fsync the finished temp file, rename it to its final name, fsync the directory."""
    os.chmod(partial, mode)
    fsync_file(partial)
    os.replace(partial, final)
    fsync_dir(final.parent)


def write_atomic(final: Path, text: str, mode: int = FILE_MODE) -> None:
    """Write text under the partial name, then publish it; no partial file survives a failure."""
    partial = partial_path_for(final)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        publish(partial, final, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def write(meta: BackupMeta, json_path: Path) -> None:
    write_atomic(Path(json_path), meta.to_json())
