"""The settings' OPTIONS -> psycopg keyword arguments and libpq's environment (core/djangoenv.py),
the tools' service file (pg/tools.py), connection errors that name SSL (pg/db.py) and --interval."""

import math
import os
import subprocess
from pathlib import Path

import click
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from migration_tools.cli.options import Seconds
from migration_tools.core.djangoenv import (
    IGNORED_OPTIONS,
    LIBPQ_ENV,
    SERVICE_FILE_ONLY,
    ConnParams,
    libpq_options,
)
from migration_tools.core.errors import EXIT_USAGE, BadInput
from migration_tools.core.redact import MASK, redact
from migration_tools.pg import db, tools

PASSPHRASE = "key-passphrase-never-shown"
PASSWORD = "db-password-never-shown"
SSL = {
    "sslmode": "verify-ca",
    "sslrootcert": "/etc/kit/ca.crt",
    "sslcert": "/etc/kit/client.crt",
    "sslkey": "/etc/kit/client.key",
    "sslpassword": PASSPHRASE,
}


def params(raw: dict, **fields) -> ConnParams:
    base = {"dbname": "medguard_sa", "user": "medguard_user", "host": "db.example.com", "port": 5433,
            "password": PASSWORD}
    return ConnParams(**(base | fields), options=libpq_options("default", raw))


def refused(raw: dict) -> BadInput:
    with pytest.raises(BadInput) as caught:
        libpq_options("default", raw)
    assert caught.value.error_id == "db-options" and caught.value.exit_code == EXIT_USAGE
    return caught.value


def test_every_honoured_key_is_a_libpq_keyword_read_from_the_variable_the_kit_sets():
    defaults = {o.keyword.decode(): o.envvar.decode() if o.envvar else None
                for o in psycopg.pq.Conninfo.get_defaults()}
    for key, variable in LIBPQ_ENV.items():
        assert defaults[key] == variable, key
    for key in SERVICE_FILE_ONLY:
        assert key in defaults and defaults[key] is None, key


def test_ssl_options_become_psycopg_keyword_arguments():
    kwargs = params(SSL | {"connect_timeout": 7, "target_session_attrs": "read-write"}).connect_kwargs()
    assert kwargs == {
        "dbname": "medguard_sa", "user": "medguard_user", "host": "db.example.com", "port": 5433,
        "password": PASSWORD, **SSL, "connect_timeout": "7", "target_session_attrs": "read-write",
    }
    make_conninfo(**kwargs)  # libpq knows every keyword


def test_ssl_options_become_libpq_environment_for_the_tools_without_the_passphrase():
    conn = params(SSL | {"options": "-c search_path=app", "connect_timeout": 7, "passfile": "/etc/kit/pgpass",
                         "target_session_attrs": "read-write"})
    env = conn.libpq_env()
    assert env == {
        "PGHOST": "db.example.com", "PGPORT": "5433", "PGUSER": "medguard_user", "PGDATABASE": "medguard_sa",
        "PGPASSWORD": PASSWORD, "PGAPPNAME": "migration_kit", "PGCONNECT_TIMEOUT": "7",
        "PGSSLMODE": "verify-ca", "PGSSLROOTCERT": "/etc/kit/ca.crt", "PGSSLCERT": "/etc/kit/client.crt",
        "PGSSLKEY": "/etc/kit/client.key", "PGOPTIONS": "-c search_path=app", "PGPASSFILE": "/etc/kit/pgpass",
        "PGTARGETSESSIONATTRS": "read-write",
    }
    assert conn.service_file_options() == {"sslpassword": PASSPHRASE}
    assert params({}).libpq_env()["PGCONNECT_TIMEOUT"] == "10"


def test_a_service_leaves_host_port_and_user_to_it():
    conn = params({"service": "medguard"}, host="", port=0, user="")
    assert conn.connect_kwargs() == {"dbname": "medguard_sa", "user": None, "password": PASSWORD,
                                     "service": "medguard"}
    env = conn.libpq_env()
    assert env["PGSERVICE"] == "medguard" and not {"PGHOST", "PGPORT", "PGUSER"} & set(env)
    assert conn.describe() == "@(the service's host)/medguard_sa service=medguard"


def test_describe_and_repr_show_sslmode_but_no_secret():
    conn = params(SSL)
    assert conn.describe() == "medguard_user@db.example.com:5433/medguard_sa sslmode=verify-ca"
    assert repr(conn) == f"ConnParams({conn.describe()})"
    for text in (conn.describe(), repr(conn), str(conn), repr(conn.with_db("other"))):
        assert PASSPHRASE not in text and PASSWORD not in text


def test_the_passphrase_is_registered_as_a_secret():
    libpq_options("default", SSL)
    assert redact(f"could not load key with {PASSPHRASE}") == f"could not load key with {MASK}"


def test_with_db_keeps_the_options():
    assert params(SSL).with_db("scratch").options == params(SSL).options


@pytest.mark.parametrize("key", IGNORED_OPTIONS)
def test_options_about_djangos_own_connection_are_ignored(key):
    assert libpq_options("default", {key: "x", "sslmode": "require"}) == (("sslmode", "require"),)


def test_assume_role_is_set_at_connection_start_for_the_kit_and_the_tools():
    conn = params({"assume_role": "app owner", "options": "-c search_path=app"})
    assert conn.connect_kwargs()["options"] == "-c search_path=app -c role=app\\ owner"
    assert conn.libpq_env()["PGOPTIONS"] == "-c search_path=app -c role=app\\ owner"


def test_values_become_libpq_text():
    assert dict(libpq_options("default", {"keepalives": True, "connect_timeout": 3, "sslmode": None,
                                          "sslrootcert": Path("/ca.crt")})) == {
        "keepalives": "1", "connect_timeout": "3", "sslrootcert": "/ca.crt"}


@pytest.mark.parametrize("key", ["replication", "require_auth", "sslnegotiation", "load_balance_hosts", "x"])
def test_a_key_the_kit_cannot_repeat_for_every_tool_is_refused(key):
    error = refused({key: "x"})
    assert error.line() == (
        f"migration_tools: DATABASES['default']['OPTIONS']: '{key}' is not a connection setting the kit can "
        "give pg_dump, pg_restore and psql as Django gives it to psycopg; remove it "
        "(migration_tools/core/djangoenv.py lists the keys the kit honours) [db-options]"
    )


def test_where_to_connect_belongs_in_the_settings_not_in_options():
    assert refused({"host": "elsewhere"}).line() == (
        "migration_tools: DATABASES['default']['OPTIONS']: 'host' says where to connect, which the kit "
        "reads from HOST; move it to DATABASES['default']['HOST'] [db-options]"
    )


@pytest.mark.parametrize("key", ["connect_timeout", "keepalives_idle", "tcp_user_timeout"])
def test_a_timeout_that_is_not_a_whole_number_is_refused(key):
    assert refused({key: "soon"}).message.endswith(f"'{key}' is 'soon', not a whole number")


def test_a_value_libpq_refuses_is_bad_input():
    error = db.connection_error(params({"sslmode": "bogus"}), psycopg.OperationalError(
        'connection is bad: invalid sslmode value: "bogus"'))
    assert error.exit_code == EXIT_USAGE and error.line() == (
        "migration_tools: libpq refuses a value of the settings' DATABASES OPTIONS: invalid sslmode value: "
        '"bogus"; fix it, then run migration_tools status [db-options]'
    )


def test_a_value_that_is_not_text_is_refused():
    assert "'sslmode' is a dict" in refused({"sslmode": {"mode": "require"}}).message


def test_a_passphrase_a_service_file_cannot_carry_is_refused_without_showing_it():
    error = refused({"sslpassword": " padded "})
    assert "white space" in error.message and "padded" not in error.line()


def test_sslpassword_with_a_service_is_refused(monkeypatch):
    error = refused({"service": "medguard", "sslpassword": "abc"})
    assert "put them in the service's section" in error.line()
    monkeypatch.setenv("PGSERVICE", "from_env")
    assert "the service 'from_env'" in refused({"keepalives_idle": 30}).message


def test_the_tools_read_the_passphrase_from_an_in_memory_service_file(monkeypatch):
    monkeypatch.delenv("PGSERVICEFILE", raising=False)
    monkeypatch.delenv("PGSERVICE", raising=False)
    conn = params(SSL | {"keepalives_idle": 30})
    env = tools.tool_env(conn)
    assert env["PGSERVICE"] == "migration_kit" and env["PGSSLMODE"] == "verify-ca"
    assert not any(PASSPHRASE in value for key, value in env.items() if key != "PGPASSWORD")
    path = env["PGSERVICEFILE"]
    if os.path.isdir("/proc/self/fd"):
        assert path.startswith(f"/proc/{os.getpid()}/fd/")
    text = f"[migration_kit]\nkeepalives_idle=30\nsslpassword={PASSPHRASE}\n"
    assert Path(path).read_text() == text
    assert subprocess.run(["cat", path], capture_output=True, text=True, check=True).stdout == text  # a child
    assert tools.tool_env(conn)["PGSERVICEFILE"] == path  # one file per process and content
    assert not {"PGSERVICEFILE", "PGSERVICE"} & set(tools.tool_env(params({"sslmode": "require"})))


def ssl_failure(message: str) -> BadInput:
    error = db.connection_error(params({"sslmode": "require"}), psycopg.OperationalError(message))
    assert isinstance(error, BadInput) and error.exit_code == EXIT_USAGE
    return error


def test_a_server_without_ssl_is_named_as_such():
    error = ssl_failure('connection failed: connection to server at "10.0.0.5", port 5433 failed: '
                        "server does not support SSL, but SSL was required")
    assert error.line() == (
        "migration_tools: cannot connect to PostgreSQL at db.example.com:5433 with sslmode=require: server "
        "does not support SSL, but SSL was required; enable SSL on the server or fix the ssl* keys of the "
        "settings' DATABASES OPTIONS, then run migration_tools status [db-ssl]"
    )


def test_a_certificate_problem_is_an_ssl_error():
    error = ssl_failure('connection to server at "10.0.0.5", port 5433 failed: SSL error: certificate verify '
                        "failed")
    assert error.error_id == "db-ssl" and "certificate verify failed" in error.message


def test_a_server_that_refuses_plain_connections_says_so():
    error = db.connection_error(params({}), psycopg.OperationalError(
        'connection to server at "10.0.0.5", port 5433 failed: FATAL:  pg_hba.conf rejects connection for '
        'host "10.0.0.9", user "medguard_user", database "medguard_sa", no encryption'))
    assert error.error_id == "db-hba" and error.exit_code == EXIT_USAGE
    assert "refuses user 'medguard_user' without SSL: FATAL: pg_hba.conf rejects" in error.message


@pytest.mark.parametrize("text", ["nan", "inf", "NaN", "Infinity", "-inf", "0.01"])
def test_interval_refuses_what_is_not_a_finite_number_of_seconds(text):
    with pytest.raises(click.BadParameter):
        Seconds(min=0.05).convert(text, None, None)


def test_interval_takes_a_finite_number_of_seconds():
    assert Seconds(min=0.05).convert("0.5", None, None) == 0.5
    assert math.isfinite(Seconds(min=0.05).convert("1e3", None, None))
