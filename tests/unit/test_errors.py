"""core/errors.py: the one stderr line and the exit code of each kind of failure."""

import io

import pytest

from migration_tools.core.errors import (
    EXIT_FAILED,
    EXIT_ROLLED_BACK,
    EXIT_USAGE,
    BadInput,
    KitError,
    OperationFailed,
    RolledBack,
    prog_name,
)


def test_prog_name_defaults_to_the_package_name():
    assert prog_name() == "migration_tools"


def test_prog_name_is_what_the_shell_wrapper_passes_in_pm_prog(monkeypatch):
    monkeypatch.setenv("PM_PROG", "production_migrate.sh")
    assert prog_name() == "production_migrate.sh"


def test_an_empty_pm_prog_falls_back_to_the_package_name(monkeypatch):
    monkeypatch.setenv("PM_PROG", "")
    assert prog_name() == "migration_tools"


def test_line_with_a_hint(monkeypatch):
    monkeypatch.setenv("PM_PROG", "rollback_manager.py")
    error = KitError("lock-held", "another deploy holds the lock", "wait for it to finish, then run it again")
    assert error.line() == (
        "rollback_manager.py: another deploy holds the lock; wait for it to finish, then run it again "
        "[lock-held]"
    )


def test_line_without_a_hint(monkeypatch):
    monkeypatch.setenv("PM_PROG", "production_migrate.sh")
    assert OperationFailed("swap-check", "'medguard' is not the restored database").line() == (
        "production_migrate.sh: 'medguard' is not the restored database [swap-check]"
    )


def test_the_message_is_the_exception_text():
    error = BadInput("env-port", "DB_PORT 'x' is not a port number", "fix DB_PORT")
    assert str(error) == "DB_PORT 'x' is not a port number"
    assert (error.error_id, error.message, error.hint) == ("env-port", "DB_PORT 'x' is not a port number",
                                                           "fix DB_PORT")


@pytest.mark.parametrize(
    ("kind", "code"),
    [(KitError, 1), (BadInput, 2), (OperationFailed, 1), (RolledBack, 3)],
)
def test_exit_codes(kind, code):
    assert kind("x", "y").exit_code == code


def test_exit_code_constants():
    assert (EXIT_FAILED, EXIT_USAGE, EXIT_ROLLED_BACK) == (1, 2, 3)


def test_errors_are_kit_errors():
    assert all(issubclass(kind, KitError) for kind in (BadInput, OperationFailed, RolledBack))


def test_show_prints_the_line_on_stderr(capsys):
    RolledBack("migrate-failed", "users.0003 failed", "fix it, then run migrate again").show()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "migration_tools: users.0003 failed; fix it, then run migrate again [migrate-failed]\n"
    )


def test_show_prints_to_a_given_file():
    stream = io.StringIO()
    BadInput("usage", "no such command 'bakup'").show(stream)
    assert stream.getvalue() == "migration_tools: no such command 'bakup' [usage]\n"
