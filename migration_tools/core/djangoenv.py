"""Find and start the operator's Django project, and read the connection it resolves to.

The connection is Django's: `conn_params` reads the alias's NAME, USER, PASSWORD, HOST, PORT and
OPTIONS, and ConnParams is the one place that maps them, to psycopg keyword arguments for the
kit's connections (`connect_kwargs`) and to libpq's environment for pg_dump, pg_restore and psql
(`libpq_env`). OPTIONS keys, by what the kit does with them:

Honoured (libpq connection keywords that libpq 14, the oldest client tools the kit accepts, reads):
  sslmode, sslrootcert, sslcert, sslkey, sslpassword, sslcrl, sslcrldir, sslsni, sslcompression,
  ssl_min_protocol_version, ssl_max_protocol_version, gssencmode, krbsrvname, gsslib,
  channel_binding, requirepeer, hostaddr, options, connect_timeout, target_session_attrs,
  keepalives, keepalives_idle, keepalives_interval, keepalives_count, tcp_user_timeout,
  service, passfile; and Django's `assume_role`, sent as `-c role=...` in `options` (the SET ROLE
  Django runs, made at connection start, so that the tools act as that role too). libpq reads
  sslpassword, keepalives* and tcp_user_timeout from no environment variable: the tools get them
  from a service file held in memory (pg/tools.py). sslpassword is a secret: never on a command
  line, in describe(), repr() or a log. With `service`, the settings' HOST, PORT and USER may be
  empty (the service's apply) but NAME may not: the kit names backups and rollback targets by it.
Ignored (they change how Django uses its own connection, not how a connection is made):
  isolation_level, server_side_binding, cursor_factory, context, prepare_threshold, pool,
  client_encoding (Django forces UTF8; the tools choose their own), application_name and
  fallback_application_name (the kit names its sessions itself: status and the deploy lock find
  them by that name).
Refused (BadInput [db-options], exit 2, before anything runs): any other key. dbname, user,
  password, host and port belong in NAME, USER, PASSWORD, HOST and PORT; the rest (replication,
  keywords of libpq 16+ such as require_auth, sslnegotiation or load_balance_hosts, which older
  pg_dump would ignore silently, and unknown keys) may change how the connection is made in a way
  the kit cannot repeat for every tool. sslpassword, keepalives* or tcp_user_timeout together with
  a service (OPTIONS or PGSERVICE) are refused too: put them in the service's section; so is a
  connect_timeout, keepalives* or tcp_user_timeout that is not a whole number.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_tools.core.errors import BadInput, status_command
from migration_tools.core.redact import register_secret

SUPPORTED_DJANGO = ((4, 2), (7, 0))
APPLICATION_NAME = "migration_kit"
TOOL_CONNECT_TIMEOUT = "10"

# OPTIONS key (a libpq keyword) -> the environment variable libpq reads it from.
LIBPQ_ENV = {
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI",
    "sslcompression": "PGSSLCOMPRESSION", "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION", "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB", "channel_binding": "PGCHANNELBINDING",
    "requirepeer": "PGREQUIREPEER", "hostaddr": "PGHOSTADDR", "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "service": "PGSERVICE", "passfile": "PGPASSFILE",
}
# libpq keywords with no environment variable: the tools read them from a service file.
SERVICE_FILE_ONLY = (
    "sslpassword", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout",
)
SECRET_OPTIONS = ("sslpassword",)
IGNORED_OPTIONS = (
    "isolation_level", "server_side_binding", "cursor_factory", "context", "prepare_threshold",
    "pool", "client_encoding", "application_name", "fallback_application_name",
)
INTEGER_OPTIONS = ("connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                   "keepalives_count", "tcp_user_timeout")
TARGET_OPTIONS = {"dbname": "NAME", "user": "USER", "password": "PASSWORD", "host": "HOST", "port": "PORT"}


@dataclass(frozen=True)
class ConnParams:
    """Where and how to connect: the settings' NAME/USER/HOST/PORT/PASSWORD and OPTIONS.

    `options` holds the honoured OPTIONS as libpq keyword/text pairs; host "" and port 0 leave
    them to libpq (the settings' `service`).
    """

    dbname: str
    user: str
    host: str
    port: int
    password: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"ConnParams({self.describe()})"

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)

    def describe(self) -> str:
        """The connection as an operator reads it; never the password or the key's passphrase."""
        where = (self.host or "(the service's host)") + (f":{self.port}" if self.port else "")
        extras = [f"{key}={value}" for key in ("sslmode", "service") if (value := self.option(key))]
        return " ".join([f"{self.user}@{where}/{self.dbname}", *extras])

    def with_db(self, dbname: str) -> ConnParams:
        return dataclasses.replace(self, dbname=dbname)

    def connect_kwargs(self) -> dict[str, Any]:
        """psycopg.connect keyword arguments (without application_name and autocommit)."""
        kwargs: dict[str, Any] = {"dbname": self.dbname, "user": self.user or None}
        if self.host:
            kwargs["host"] = self.host
        if self.port:
            kwargs["port"] = self.port
        if self.password:
            kwargs["password"] = self.password
        return kwargs | dict(self.options)

    def libpq_env(self) -> dict[str, str]:
        """Environment for the PostgreSQL client tools: the password never goes on argv.

        The keywords libpq reads from no variable are in service_file_options().
        """
        env = {"PGDATABASE": self.dbname, "PGCONNECT_TIMEOUT": TOOL_CONNECT_TIMEOUT,
               "PGAPPNAME": APPLICATION_NAME}
        if self.user:
            env["PGUSER"] = self.user
        if self.host:
            env["PGHOST"] = self.host
        if self.port:
            env["PGPORT"] = str(self.port)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env | self.option_env()

    def option_env(self) -> dict[str, str]:
        """The OPTIONS that libpq reads from the environment, as variables (no secret among them)."""
        return {LIBPQ_ENV[key]: value for key, value in self.options if key in LIBPQ_ENV}

    def service_file_options(self) -> dict[str, str]:
        """The OPTIONS libpq reads from no environment variable (sslpassword among them)."""
        return {key: value for key, value in self.options if key in SERVICE_FILE_ONLY}


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
            f"export it (for example medguard_backend.settings.production), then run {status_command()}",
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
    options = libpq_options(alias, cfg.get("OPTIONS") or {})
    service = dict(options).get("service")
    if service and not cfg.get("NAME"):
        raise _refused(alias, f"'service' ({service}) is set but NAME is empty",
                       "set NAME too: the kit names backups and rollback targets by it")
    port_raw = str(cfg.get("PORT") or ("" if service else "5432"))
    if port_raw and not port_raw.isdigit():
        raise BadInput("port-invalid", f"database port '{port_raw}' is not a number", "fix DB_PORT")
    return ConnParams(
        dbname=str(cfg.get("NAME") or ""),
        user=str(cfg.get("USER") or ""),
        host=str(cfg.get("HOST") or ("" if service else "localhost")),
        port=int(port_raw or 0),
        password=password,
        options=options,
    )


def _refused(alias: str, what: str, fix: str) -> BadInput:
    return BadInput("db-options", f"DATABASES['{alias}']['OPTIONS']: {what}", fix)


def _text(alias: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (str, int, float, Path)):
        return str(value)
    raise _refused(alias, f"'{key}' is a {type(value).__name__}, not a text or a number",
                   f"give '{key}' as libpq reads it, as text")


def libpq_options(alias: str, raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The honoured OPTIONS as libpq keyword/text pairs; BadInput [db-options] for any refused."""
    honoured: dict[str, str] = {}
    for key, value in raw.items():
        if key in IGNORED_OPTIONS or value is None:
            continue
        if key in TARGET_OPTIONS:
            setting = TARGET_OPTIONS[key]
            raise _refused(alias, f"'{key}' says where to connect, which the kit reads from {setting}",
                           f"move it to DATABASES['{alias}']['{setting}']")
        if key == "assume_role":
            continue
        if key not in LIBPQ_ENV and key not in SERVICE_FILE_ONLY:
            raise _refused(alias, f"'{key}' is not a connection setting the kit can give pg_dump, "
                           "pg_restore and psql as Django gives it to psycopg",
                           "remove it (migration_tools/core/djangoenv.py lists the keys the kit honours)")
        honoured[key] = _text(alias, key, value)
        if key in SECRET_OPTIONS:
            register_secret(honoured[key])
        text = honoured[key]
        if key in INTEGER_OPTIONS and not text.strip().lstrip("-").isdigit():
            raise _refused(alias, f"'{key}' is {text!r}, not a whole number", f"give '{key}' as one")
        if key in SERVICE_FILE_ONLY and (text != text.strip() or "\n" in text or "\r" in text):
            raise _refused(alias, f"'{key}' starts or ends with white space or holds a line break, "
                           "which a libpq service file cannot carry", f"change '{key}'")
    role = raw.get("assume_role")
    if role:
        escaped = _text(alias, "assume_role", role).replace("\\", "\\\\").replace(" ", "\\ ")
        honoured["options"] = " ".join(filter(None, [honoured.get("options"), f"-c role={escaped}"]))
    in_file = sorted(key for key in honoured if key in SERVICE_FILE_ONLY)
    service = honoured.get("service") or os.environ.get("PGSERVICE")
    if in_file and service:
        raise _refused(alias, f"{', '.join(in_file)} together with the service '{service}' (the tools "
                       "can read them only from a service file of the kit's)",
                       "put them in the service's section instead")
    return tuple(honoured.items())


def django_version() -> str:
    import django

    return django.get_version()
