"""Find and start the operator's Django project, and read the connection it resolves to."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from migration_tools.core.errors import BadInput, prog_name
from migration_tools.core.redact import register_secret

SUPPORTED_DJANGO = ((4, 2), (7, 0))


@dataclass(frozen=True)
class ConnParams:
    dbname: str
    user: str
    host: str
    port: int
    password: str = ""

    def __repr__(self) -> str:
        return f"ConnParams({self.describe()})"

    def describe(self) -> str:
        """The connection as an operator reads it; never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def with_db(self, dbname: str) -> ConnParams:
        return ConnParams(dbname, self.user, self.host, self.port, self.password)

    def libpq_env(self) -> dict[str, str]:
        """Environment for the PostgreSQL client tools: the password never goes on argv."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
            "PGCONNECT_TIMEOUT": "10",
            "PGAPPNAME": "migration_kit",
        }
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def project_dir() -> Path:
    return Path(os.environ.get("DJANGO_PROJECT_DIR") or os.getcwd()).resolve()


_ready = False


def setup_django(*, populate_apps: bool = True) -> None:
    """Put the project first on sys.path and run django.setup() once.

    Commands that only need the settings (backups, the rollback manager) pass
    populate_apps=False: loading every app and model costs about half a second.
    """
    global _ready
    if _ready:
        return
    directory = project_dir()
    if not directory.is_dir():
        raise BadInput(
            "project-missing",
            f"DJANGO_PROJECT_DIR '{directory}' is not a directory",
            "point DJANGO_PROJECT_DIR at the folder holding manage.py",
        )
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not module:
        raise BadInput(
            "env-missing",
            "missing environment variable: DJANGO_SETTINGS_MODULE",
            f"export it (for example medguard_backend.settings.production), then run {prog_name()} status",
        )
    sys.path.insert(0, str(directory))
    try:
        import django
    except ImportError as exc:
        raise BadInput(
            "django-missing",
            f"Django is not importable with {sys.executable}: {exc}",
            "activate the project's virtual environment or pip install -r requirements.txt",
        ) from exc
    if not (SUPPORTED_DJANGO[0] <= django.VERSION[:2] < SUPPORTED_DJANGO[1]):
        raise BadInput(
            "django-version",
            f"Django {django.get_version()} is not supported (need 4.2 to 6.x)",
            "install a supported Django in the project's virtual environment",
        )
    try:
        if populate_apps:
            django.setup()
        else:
            from django.conf import settings

            settings.INSTALLED_APPS  # noqa: B018 - imports the settings module, reports bad ones here
    except ImportError as exc:
        raise BadInput(
            "settings-import",
            f"cannot import settings module '{module}' from {directory}: {exc}",
            "fix DJANGO_SETTINGS_MODULE or DJANGO_PROJECT_DIR",
        ) from exc
    _ready = populate_apps


def conn_params(alias: str = "default") -> ConnParams:
    from django.conf import settings

    databases = settings.DATABASES
    if alias not in databases:
        raise BadInput(
            "alias-unknown",
            f"database alias '{alias}' is not in DATABASES (have: {', '.join(databases)})",
            "pass --database with one of those",
        )
    cfg = databases[alias]
    if "postgresql" not in cfg.get("ENGINE", ""):
        raise BadInput(
            "engine-unsupported",
            f"database '{alias}' uses {cfg.get('ENGINE')}, not PostgreSQL",
            "this kit supports django.db.backends.postgresql only",
        )
    password = str(cfg.get("PASSWORD") or "")
    register_secret(password)
    port_raw = str(cfg.get("PORT") or "5432")
    if not port_raw.isdigit():
        raise BadInput("port-invalid", f"database port '{port_raw}' is not a number", "fix DB_PORT")
    return ConnParams(
        dbname=str(cfg.get("NAME") or ""),
        user=str(cfg.get("USER") or ""),
        host=str(cfg.get("HOST") or "localhost"),
        port=int(port_raw),
        password=password,
    )


def django_version() -> str:
    import django

    return django.get_version()
