"""Where things live and what the project configured: env vars, paths, the MIGRATION_KIT dict."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_ENV_VARS = ("DJANGO_SETTINGS_MODULE", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST", "DB_PORT")
DEFAULT_RETENTION = 7


def missing_env_vars(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [name for name in REQUIRED_ENV_VARS if not env.get(name)]


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


@dataclass(frozen=True)
class KitSettings:
    """The project's MIGRATION_KIT settings dict, with defaults."""

    backup_prefix: str = "django"
    critical_models: tuple[str, ...] = ()
    duplicate_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    retention: int = DEFAULT_RETENTION

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> KitSettings:
        raw = raw or {}
        return cls(
            backup_prefix=str(raw.get("BACKUP_PREFIX") or "django"),
            critical_models=tuple(raw.get("CRITICAL_MODELS") or ()),
            duplicate_keys={k: tuple(v) for k, v in (raw.get("DUPLICATE_KEYS") or {}).items()},
            retention=int(raw.get("BACKUP_RETENTION") or DEFAULT_RETENTION),
        )


def kit_settings() -> KitSettings:
    """Read MIGRATION_KIT from the (already configured) Django settings."""
    from django.conf import settings

    return KitSettings.from_dict(getattr(settings, "MIGRATION_KIT", None))
