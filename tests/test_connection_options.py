"""The connection is Django's: the settings' OPTIONS reach every connection and tool the kit starts.

Settings: tests/fixtures/ssl_settings.py (the demo's, OPTIONS from KIT_TEST_DB_OPTIONS). Against the
session's plain server, `sslmode=require` and an option the kit cannot honour are refused before
anything runs. Against a second server with SSL (devtools/pg_ssl.py), the role CERT_USER may only
connect over SSL with a client certificate the suite's CA signed (pg_hba: hostnossl reject,
hostssl clientcert=verify-full): status, backup and rollback work as that role with sslmode
verify-ca, the certificate and its encrypted key's passphrase (sslpassword), even with
PGSSLMODE=disable in the environment; the server log (log_connections) shows each connection of
the kit, pg_dump and pg_restore used SSL.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools import pg_ssl
from devtools.pg_server import Server, create_database, drop_database
from tests.support import (
    EXAMPLE,
    Database,
    base_env,
    change_after_backup,
    fault_bin,
    side_databases,
    stderr_last,
)

SETTINGS = "tests.fixtures.ssl_settings"
SSL_TEMPLATE = "ssl_demo_template"
PROG = "production_migrate.sh"


def with_options(options: dict[str, str]) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": SETTINGS, "KIT_TEST_DB_OPTIONS": json.dumps(options)}


def recording_pg_dump(tmp_path: Path, path: str | None = None) -> tuple[dict[str, str], Path]:
    """pg_dump first on PATH: a dump (not --version) writes its argv and libpq environment to a
    file, then runs the real one."""
    record = tmp_path / "pg_dump.record"
    env = fault_bin(tmp_path, "pg_dump", f"""
if [ "$*" != --version ]; then
  {{ printf 'argv:'; printf ' %s' "$@"; echo; env | grep '^PG' | grep -v '^PGPASSWORD=' || :; }} >> '{record}'
fi
exec REAL "$@"
""", path)
    return env, record


def plain_refusal(db: Database, result: subprocess.CompletedProcess[str], record: Path) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "[internal]" not in result.stderr
    assert not (db.workdir / "backups").exists() and not (db.workdir / "rollback_scripts").exists()
    assert not record.exists(), "pg_dump ran"


def test_sslmode_require_against_a_server_without_ssl_is_refused_before_anything_runs(db, tmp_path):
    path, record = recording_pg_dump(tmp_path)
    env = with_options({"sslmode": "require"}) | path
    applied = db.applied()
    expected = (
        f"{PROG}: cannot connect to PostgreSQL at 127.0.0.1:{db.server.port} with sslmode=require: server "
        "does not support SSL, but SSL was required; enable SSL on the server or fix the ssl* keys of the "
        f"settings' DATABASES OPTIONS, then run {PROG} status [db-ssl]"
    )
    for command in ("backup", "status", "migrate", "full-deploy"):
        result = db.script(command, env=env)
        plain_refusal(db, result, record)
        assert stderr_last(result) == expected, command
    assert db.applied() == applied
    rollback = db.rollback_manager("emergency-rollback", "--yes", env=env)
    plain_refusal(db, rollback, record)
    assert "[db-ssl]" in stderr_last(rollback)
    assert "backup outcome=failed cannot connect to PostgreSQL at 127.0.0.1:" in (db.workdir / "migration.log"
                                                                                  ).read_text()


def test_an_option_the_kit_cannot_honour_is_refused_before_anything_runs(db, tmp_path):
    path, record = recording_pg_dump(tmp_path)
    env = with_options({"sslmode": "require", "replication": "database"}) | path
    for command in ("backup", "status"):
        result = db.script(command, env=env)
        plain_refusal(db, result, record)
        assert stderr_last(result) == (
            f"{PROG}: DATABASES['default']['OPTIONS']: 'replication' is not a connection setting the kit can "
            "give pg_dump, pg_restore and psql as Django gives it to psycopg; remove it "
            "(migration_tools/core/djangoenv.py lists the keys the kit honours) [db-options]"
        )
    assert "startup failed" in (db.workdir / "migration.log").read_text()


# --- a server with SSL ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert_role(pg_ssl_server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """CERT_USER (a superuser, as the kit's role often is) and a seeded demo template; its password."""
    password = secrets.token_urlsafe(12)
    with psycopg.connect(host="127.0.0.1", port=pg_ssl_server.port, user="postgres", dbname="postgres",
                         password=pg_ssl_server.password, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {pg_ssl.CERT_USER}")
        conn.execute(f"CREATE ROLE {pg_ssl.CERT_USER} LOGIN SUPERUSER PASSWORD '{password}'")
    if create_database(pg_ssl_server, SSL_TEMPLATE):
        workdir = tmp_path_factory.mktemp("ssl_seed")
        seeded = subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), "seed_demo"],
            env=base_env(pg_ssl_server, SSL_TEMPLATE, workdir), cwd=workdir,
            capture_output=True, text=True, check=False,
        )
        assert seeded.returncode == 0, seeded.stderr
    return password


@pytest.fixture
def ssl_db(pg_ssl_server: Server, cert_role: str, tmp_path: Path) -> Iterator[Database]:
    """A seeded demo database on the SSL server; the kit connects as CERT_USER with
    verify-ca, a client certificate and its passphrase, and PGSSLMODE=disable in its environment."""
    name = f"s_{uuid.uuid4().hex[:10]}"
    create_database(pg_ssl_server, name, template=SSL_TEMPLATE)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    env = base_env(pg_ssl_server, name, workdir) | {
        "DB_USER": pg_ssl.CERT_USER,
        "DB_PASSWORD": cert_role,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "KIT_TEST_DB_OPTIONS": json.dumps(pg_ssl.client_options(pg_ssl_server.root)),
        "PGSSLMODE": "disable",
        "PATH": f"{pg_ssl_server.bindir}:{os.environ['PATH']}",  # its build's tools: the wheels lack SSL
    }
    database = Database(pg_ssl_server, name, workdir, env)
    yield database
    for side in side_databases(database):
        drop_database(pg_ssl_server, side)
    drop_database(pg_ssl_server, name)


def server_log(server: Server) -> Path:
    return server.datadir / "server.log"


def connections_since(server: Server, offset: int) -> list[str]:
    """The server's 'connection authorized' lines for CERT_USER written after `offset`."""
    with open(server_log(server), encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return [line for line in handle.read().splitlines()
                if f"connection authorized: user={pg_ssl.CERT_USER} " in line]


def run_logged(db: Database, run) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    offset = server_log(db.server).stat().st_size
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = connections_since(db.server, offset)
    assert lines and all(" SSL enabled (protocol=" in line for line in lines), lines
    return result, lines


def passphrase(db: Database) -> str:
    return str(json.loads(db.env["KIT_TEST_DB_OPTIONS"])["sslpassword"])


def test_status_connects_with_ssl_as_the_settings_ask(ssl_db):
    result, lines = run_logged(ssl_db, lambda: ssl_db.script("status"))
    assert f"Connection: {pg_ssl.CERT_USER}@127.0.0.1:{ssl_db.server.port}/{ssl_db.name} sslmode=verify-ca" \
        in result.stdout
    assert any("application_name=migration_kit:status " in line for line in lines)
    assert passphrase(ssl_db) not in result.stdout + result.stderr


def test_backup_dumps_over_ssl_and_never_shows_the_key_passphrase(ssl_db, tmp_path):
    path, record = recording_pg_dump(tmp_path, ssl_db.env["PATH"])
    result, lines = run_logged(ssl_db, lambda: ssl_db.script("backup", "--deep", env=path))
    assert any("application_name=migration_kit:backup pg_dump SSL enabled" in line for line in lines)
    assert any(f"database=kitcheck_{ssl_db.name}_" in line for line in lines)  # the deep check
    recorded = record.read_text()
    options = pg_ssl.client_options(ssl_db.server.root)
    for variable, key in (("PGSSLMODE", "sslmode"), ("PGSSLROOTCERT", "sslrootcert"),
                          ("PGSSLCERT", "sslcert"), ("PGSSLKEY", "sslkey")):
        assert f"\n{variable}={options[key]}\n" in recorded
    assert "\nPGSERVICE=migration_kit\n" in recorded
    secret = passphrase(ssl_db)
    assert secret not in recorded + result.stdout + result.stderr
    for file in ssl_db.workdir.rglob("*"):
        assert not file.is_file() or secret.encode() not in file.read_bytes(), file


def test_rollback_restores_over_ssl(ssl_db):
    run_logged(ssl_db, lambda: ssl_db.script("backup"))
    dump = next((ssl_db.workdir / "backups").glob("*.sql"))
    counts = ssl_db.scalar("SELECT count(*) FROM medguard_notifications_notification")
    change_after_backup(ssl_db)
    result, lines = run_logged(ssl_db, lambda: ssl_db.rollback_manager("rollback", dump.name, "--yes"))
    assert f"rolled back to {dump.name}" in result.stdout
    assert ssl_db.scalar("SELECT count(*) FROM medguard_notifications_notification") == counts
    assert ssl_db.scalar("SELECT to_regclass('after_backup') IS NULL")
    assert any("application_name=migration_kit " in line and "__restore_" in line for line in lines)


def test_a_wrong_key_passphrase_is_an_ssl_error_before_anything_runs(ssl_db):
    options = pg_ssl.client_options(ssl_db.server.root) | {"sslpassword": "not-the-passphrase"}
    result = ssl_db.script("backup", env={"KIT_TEST_DB_OPTIONS": json.dumps(options)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert stderr_last(result).startswith(
        f"{PROG}: cannot connect to PostgreSQL at 127.0.0.1:{ssl_db.server.port} with sslmode=verify-ca: "
        f'could not load private key file "{options["sslkey"]}"'
    )
    assert stderr_last(result).endswith("[db-ssl]") and "not-the-passphrase" not in result.stderr
    assert not (ssl_db.workdir / "backups").exists()
