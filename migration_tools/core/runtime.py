"""What every command starts from: Django set up, the audit log open, the connection resolved."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from migration_tools.core import audit
from migration_tools.core.config import KitSettings, Paths, kit_settings, require_env
from migration_tools.core.djangoenv import ConnParams, conn_params, setup_django
from migration_tools.core.redact import register_environment_secrets


@dataclass
class Kit:
    command: str
    alias: str
    paths: Paths
    settings: KitSettings
    params: ConnParams
    log: logging.Logger


def start(
    command: str, alias: str = "default", *, log_name: str = "migration", apps: bool = True
) -> Kit:
    """Set up Django and the audit log for one command; raises KitError on bad configuration.

    The required variables are checked first (config.require_env: exit 2 naming them), so the
    core refuses exactly as the shell scripts do when it is started directly.
    `apps=False` reads the settings without loading the apps, for commands that need no models.
    """
    register_environment_secrets()
    paths = Paths.from_env()
    log_path = paths.rollback_log if log_name == "rollback" else paths.migration_log
    log = audit.setup(log_path, command)
    try:
        require_env()
        setup_django(populate_apps=apps)
        params = conn_params(alias)
        settings = kit_settings()
    except Exception as exc:
        log.error("startup failed: %s", getattr(exc, "message", exc))
        raise
    log.info("start database=%s", params.describe())
    return Kit(command, alias, paths, settings, params, log)
