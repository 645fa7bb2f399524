"""pg/tools.py: how a failed pg_dump or pg_restore is explained in one line."""

import pytest

from migration_tools.core.redact import MASK, register_secret
from migration_tools.pg.tools import first_error_line, signal_name, tool_failure

PG_DUMP_FAILED = (
    "pg_dump: warning: there are circular foreign-key constraints on this table:\n"
    "pg_dump: detail: users_user\n"
    'pg_dump: error: query failed: ERROR:  permission denied for table "users_user"\n'
    'pg_dump: detail: Query was: LOCK TABLE public.users_user IN ACCESS SHARE MODE\n'
)


def test_first_error_line_is_the_first_line_naming_an_error():
    assert first_error_line(PG_DUMP_FAILED) == (
        'pg_dump: error: query failed: ERROR: permission denied for table "users_user"'
    )


def test_first_error_line_finds_a_fatal_and_collapses_whitespace():
    stderr = "\n   \npg_restore:   connection failed:  FATAL:  database \"x\" does not exist\n"
    assert first_error_line(stderr) == 'pg_restore: connection failed: FATAL: database "x" does not exist'


def test_error_is_matched_in_any_case():
    assert first_error_line("pg_restore: starting\npg_restore: Error while PROCESSING TOC:\nmore\n") == (
        "pg_restore: Error while PROCESSING TOC:"
    )


def test_without_an_error_line_the_last_line_is_shown():
    assert first_error_line("pg_dump: reading schemas\npg_dump: saving   encoding\n\n") == (
        "pg_dump: saving encoding"
    )


@pytest.mark.parametrize("stderr", ["", "\n  \n\t\n"])
def test_without_any_output_it_says_so(stderr):
    assert first_error_line(stderr) == "no error message"


def test_first_error_line_redacts_registered_secrets_and_passwords():
    register_secret("Sup3r-S3cret")
    stderr = (
        "pg_dump: error: connection to server failed: password=hunter2 rejected\n"
        "pg_dump: error: role Sup3r-S3cret\n"
    )
    assert first_error_line(stderr) == (
        f"pg_dump: error: connection to server failed: password={MASK} rejected"
    )
    assert first_error_line("pg_dump: error: role Sup3r-S3cret") == f"pg_dump: error: role {MASK}"


@pytest.mark.parametrize(("number", "name"), [(9, "SIGKILL"), (15, "SIGTERM"), (2, "SIGINT"), (6, "SIGABRT")])
def test_signal_name(number, name):
    assert signal_name(number) == name


@pytest.mark.parametrize("number", [0, 999])
def test_signal_name_of_an_unknown_number(number):
    assert signal_name(number) == f"signal {number}"


def test_a_tool_killed_by_a_signal_says_which():
    assert tool_failure("pg_dump", -9, PG_DUMP_FAILED) == "pg_dump was killed by signal SIGKILL"
    assert tool_failure("pg_restore", -15, "") == "pg_restore was killed by signal SIGTERM"


def test_a_tool_that_exited_non_zero_shows_its_exit_code_and_error_line():
    assert tool_failure("pg_dump", 1, PG_DUMP_FAILED) == (
        "pg_dump failed (exit 1): pg_dump: error: query failed: "
        'ERROR: permission denied for table "users_user"'
    )


def test_a_tool_that_printed_nothing():
    assert tool_failure("pg_restore", 1, "") == "pg_restore failed (exit 1): no error message"


def test_tool_failure_never_shows_a_registered_secret():
    register_secret("db-pass-1234")
    stderr = (
        'pg_restore: error: connection to server at "db" failed: FATAL: role "db-pass-1234" does not exist\n'
    )
    assert tool_failure("pg_restore", 1, stderr) == (
        f'pg_restore failed (exit 1): pg_restore: error: connection to server at "db" failed: FATAL: '
        f'role "{MASK}" does not exist'
    )
