"""The rules a backup's metadata file must follow: the keys, their JSON types, their values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

FORMAT_VERSION = 1
TOOL = "migration_kit"
REASONS = ("manual", "pre-migrate", "pre-rollback")
# The pg_dump tiers (core.config.BACKUP_FORMATS) -> the suffix of a backup's name: a file, or a
# directory. The pgBackRest tier's metadata is of another kind (backup.pitr_meta).
FORMATS = {"custom": ".sql", "directory": ".dir"}

# key -> the JSON types it may hold (bool is excluded from int explicitly below)
_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "tool": (str,),
    "tool_version": (str,),
    "created_at": (str,),
    "reason": (str,),
    "database": (str,),
    "host": (str,),
    "port": (int,),
    "user": (str,),
    "server_version": (str,),
    "server_version_num": (int,),
    "pg_dump_version": (str,),
    "format": (str,),
    "compression": (int,),
    "file": (str,),
    "size_bytes": (int,),
    "sha256": (str,),
    "toc_entries": (int,),
    "applied_migrations": (list,),
    "row_counts": (dict,),
    "snapshot_consistent": (bool,),
    "django_alias": (str,),
    "kit_profile": (str,),
    "validated": (dict,),
}
REQUIRED_KEYS = tuple(_TYPES)


def problem(raw: dict[str, Any]) -> str:
    """What is wrong with a parsed metadata dict, or '' when it is well formed."""
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        return f"missing key(s): {', '.join(missing)}"
    for key, types in _TYPES.items():
        value = raw[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            return f"key '{key}' has the wrong type ({type(value).__name__})"
    if raw["format_version"] != FORMAT_VERSION:
        return f"format_version {raw['format_version']} is not supported (this kit reads {FORMAT_VERSION})"
    if raw["tool"] != TOOL:
        return f"tool is '{raw['tool']}', not '{TOOL}'"
    if raw["reason"] not in REASONS:
        return f"reason '{raw['reason']}' is not one of {', '.join(REASONS)}"
    suffix = FORMATS.get(raw["format"])
    if suffix is None:
        return f"format '{raw['format']}' is not one of {', '.join(FORMATS)}"
    sha = raw["sha256"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return "sha256 is not 64 lowercase hex digits"
    if raw["size_bytes"] < 0 or raw["toc_entries"] < 0:
        return "size_bytes and toc_entries must not be negative"
    if "/" in raw["file"] or not raw["file"]:
        return f"file '{raw['file']}' must be a bare file name"
    if not raw["file"].endswith(suffix):
        return f"file '{raw['file']}' does not end with {suffix}, as a {raw['format']} backup does"
    try:
        created = datetime.fromisoformat(raw["created_at"])
    except ValueError:
        return f"created_at '{raw['created_at']}' is not an ISO 8601 time"
    if created.tzinfo is None:
        return f"created_at '{raw['created_at']}' has no UTC offset"
    pairs = raw["applied_migrations"]
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs):
        return "applied_migrations must be a list of [app, name] pairs"
    counts = raw["row_counts"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        return "row_counts must map 'schema.table' to a non-negative integer"
    if not all(isinstance(v, bool) for v in raw["validated"].values()):
        return "validated must map check names to true/false"
    writes = raw.get("write_counters", {})
    if not isinstance(writes, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in writes.values()
    ):
        return "write_counters must map 'schema.table' to a non-negative integer"
    return ""
