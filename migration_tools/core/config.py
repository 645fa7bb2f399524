"""Where things live and what the project configured: env vars, paths, the MIGRATION_KIT dict."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_tools.core.errors import BadInput, prog_name

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
            f"export them (see README, Configuration), then run {prog_name()} status",
        )
    port = env["DB_PORT"]
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise BadInput(
            "env-port",
            f"DB_PORT '{port}' is not a port number",
            f"fix DB_PORT, then run {prog_name()} status",
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
