"""Where things live and what the project configured: env vars, paths, the MIGRATION_KIT dict."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_tools.core.errors import BadInput, status_command
from migration_tools.core.pgbackrest_config import PgBackRestSettings, pgbackrest_settings

REQUIRED_ENV_VARS = ("DJANGO_SETTINGS_MODULE", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST", "DB_PORT")
DEFAULT_RETENTION = 7


def missing_env_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [name for name in REQUIRED_ENV_VARS if not env.get(name)]


def require_env(environ: Mapping[str, str] | None = None) -> None:
    """The one rule for the required variables: every one set, DB_PORT a port number.

    Applied by the shell scripts' gate before the core starts and by `runtime.start`; raises
    BadInput (exit 2) naming what is wrong and the fix.
    """
    env = os.environ if environ is None else environ
    missing = missing_env_vars(env)
    if missing:
        raise BadInput(
            "env-missing",
            f"missing environment variable(s): {' '.join(missing)}",
            f"export them (see README, Configuration), then run {status_command()}",
        )
    port = env["DB_PORT"]
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise BadInput(
            "env-port",
            f"DB_PORT '{port}' is not a port number",
            f"fix DB_PORT, then run {status_command()}",
        )


@dataclass(frozen=True)
class Paths:
    """Artefact locations; all relative to the working directory unless overridden."""

    root: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(Path(os.environ.get("PM_WORKDIR") or os.getcwd()).resolve())

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def monitoring(self) -> Path:
        return self.root / "migration_monitoring"

    @property
    def rollback_scripts(self) -> Path:
        return self.root / "rollback_scripts"

    @property
    def migration_log(self) -> Path:
        return self.root / "migration.log"

    @property
    def rollback_log(self) -> Path:
        return self.root / "rollback.log"


DEFAULT_VERIFY_TIMEOUT = 60.0  # seconds, per verify-data query
BACKUP_FORMATS = ("custom", "directory", "pgbackrest")  # pg_dump -Fc -Z9, -Fd -Z9 -j N, or pgBackRest
DEFAULT_BACKUP_JOBS = 2
DEFAULT_ESTIMATE_ABOVE_ROWS = 1_000_000


@dataclass(frozen=True)
class KitSettings:
    """The project's MIGRATION_KIT settings dict, with defaults.

    verify-data's keys besides CRITICAL_MODELS and DUPLICATE_KEYS (checked by the system check
    migration_tools.deploy.integrity.settings_check, ids migration_kit.E001-E004):
      NORMALIZED_KEYS       {"app.Model": ["field", ...]}: key fields compared case- and
                            whitespace-insensitively in DUPLICATE_KEYS
      ALLOWED_DECREASES     ["table" or "schema.table", ...]: tables whose rows may drop since the backup
      SUMMARY_LABELS        {"orphans": "...", "duplicates": "...", "app.Model": "Orphan ..."}
      VERIFY_TIMEOUT        seconds one verify-data query may take (default 60)
      ESTIMATE_ABOVE_ROWS   with --estimate, tables the planner thinks larger are not counted exactly
    Values of the wrong type are ignored here (the system check names them).

    The backup tier (backup_tier(), strict: a bad value stops every command at start, exit 2):
      BACKUP_FORMAT         "custom" (default: one pg_dump -Fc -Z9 file) or "directory"
                            (pg_dump -Fd -Z9 --jobs BACKUP_JOBS into a directory)
                            or "pgbackrest" (a pgBackRest backup of the whole cluster and a named
                            restore point; MIGRATION_KIT["PGBACKREST"], core.pgbackrest_config)
      BACKUP_JOBS           pg_dump's and pg_restore's parallel jobs (default 2, at least 1)
    """

    backup_prefix: str = "django"
    critical_models: tuple[str, ...] = ()
    duplicate_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    retention: int = DEFAULT_RETENTION
    normalized_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allowed_decreases: tuple[str, ...] = ()
    summary_labels: dict[str, str] = field(default_factory=dict)
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT
    estimate_above_rows: int = DEFAULT_ESTIMATE_ABOVE_ROWS
    backup_format: str = "custom"
    backup_jobs: int = DEFAULT_BACKUP_JOBS
    pgbackrest: PgBackRestSettings | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> KitSettings:
        raw = raw or {}
        backup_format, backup_jobs = backup_tier(raw)
        return cls(
            backup_prefix=str(raw.get("BACKUP_PREFIX") or "django"),
            critical_models=_names(raw.get("CRITICAL_MODELS")),
            duplicate_keys=_keys(raw.get("DUPLICATE_KEYS")),
            retention=int(raw.get("BACKUP_RETENTION") or DEFAULT_RETENTION),
            normalized_keys=_keys(raw.get("NORMALIZED_KEYS")),
            allowed_decreases=_names(raw.get("ALLOWED_DECREASES")),
            summary_labels={str(k): str(v) for k, v in _mapping(raw.get("SUMMARY_LABELS")).items()},
            verify_timeout=_number(raw.get("VERIFY_TIMEOUT"), DEFAULT_VERIFY_TIMEOUT),
            estimate_above_rows=int(_number(raw.get("ESTIMATE_ABOVE_ROWS"), DEFAULT_ESTIMATE_ABOVE_ROWS)),
            backup_format=backup_format,
            backup_jobs=backup_jobs,
            pgbackrest=pgbackrest_settings(raw.get("PGBACKREST")) if backup_format == "pgbackrest" else None,
        )


def backup_tier(raw: Mapping[str, Any]) -> tuple[str, int]:
    """(BACKUP_FORMAT, BACKUP_JOBS) of the settings dict; BadInput (exit 2) naming a bad value."""
    fmt = raw.get("BACKUP_FORMAT", "custom")
    if fmt not in BACKUP_FORMATS:
        raise BadInput(
            "settings-backup-format",
            f"MIGRATION_KIT['BACKUP_FORMAT'] is {fmt!r}, not one of " + ", ".join(map(repr, BACKUP_FORMATS)),
            f"fix it in the settings module, then run {status_command()}",
        )
    jobs = raw.get("BACKUP_JOBS", DEFAULT_BACKUP_JOBS)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BadInput(
            "settings-backup-jobs",
            f"MIGRATION_KIT['BACKUP_JOBS'] is {jobs!r}, not a whole number of at least 1",
            f"fix it in the settings module, then run {status_command()}",
        )
    return str(fmt), jobs


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else ()


def _keys(value: Any) -> dict[str, tuple[str, ...]]:
    return {str(k): _names(v) for k, v in _mapping(value).items()}


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if number > 0 else default


def kit_settings() -> KitSettings:
    """Read MIGRATION_KIT from the (already configured) Django settings."""
    from django.conf import settings

    return KitSettings.from_dict(getattr(settings, "MIGRATION_KIT", None))
