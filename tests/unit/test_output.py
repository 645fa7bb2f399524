"""cli/output.py show(): what the operator sees for each kind of event, in a pipe and on a terminal."""

import io
import sys

import pytest

from migration_tools.cli import output
from migration_tools.core.events import Event, step

CLEAR = "\r\033[K"


def migration(phase, *, backwards=False, seconds=0.0):
    return Event("migration", phase=phase, label="medications.0003_dose_index", index=2, total=5,
                 seconds=seconds, backwards=backwards)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def on_terminal(monkeypatch):
    """stdout is a terminal from here on (set in the test body: pytest resets sys.stdout after setup)."""
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    return screen


# -- in a pipe (stdout is not a terminal) ---------------------------------------------------


def test_a_step_is_a_plain_line(capsys):
    output.show(step("Creating backup medguard_backup_20261125_181500.sql"))
    assert capsys.readouterr() == ("Creating backup medguard_backup_20261125_181500.sql\n", "")


def test_ok_is_a_checked_line(capsys):
    output.show(Event("ok", "backup verified (SHA-256, 412 TOC entries)"))
    assert capsys.readouterr() == ("✓ backup verified (SHA-256, 412 TOC entries)\n", "")


def test_warn_goes_to_stderr(capsys):
    output.show(Event("warn", "the monitor could not read disk I/O"))
    assert capsys.readouterr() == ("", "warning: the monitor could not read disk I/O\n")


def test_fail_is_a_plain_line_on_stdout(capsys):
    output.show(Event("fail", "FAILED: medications.0003_dose_index: division by zero"))
    assert capsys.readouterr() == ("FAILED: medications.0003_dose_index: division by zero\n", "")


def test_live_prints_nothing_in_a_pipe(capsys):
    output.show(Event("live", "copying medications_doselog: 40%"))
    assert capsys.readouterr() == ("", "")


def test_a_migration_start_prints_nothing_in_a_pipe(capsys):
    output.show(migration("start"))
    output.show(migration("start", backwards=True))
    assert capsys.readouterr() == ("", "")


def test_an_applied_migration_with_its_time(capsys):
    output.show(migration("done", seconds=1.234))
    assert capsys.readouterr() == ("[2/5] medications.0003_dose_index applied in 1.23s\n", "")


def test_an_unapplied_migration_with_its_time(capsys):
    output.show(migration("done", backwards=True, seconds=0.5))
    assert capsys.readouterr() == ("  unapplied [2/5] medications.0003_dose_index in 0.50s\n", "")


# -- on a terminal ---------------------------------------------------------------------------


def test_live_replaces_the_line_on_a_terminal(monkeypatch):
    terminal = on_terminal(monkeypatch)
    output.show(Event("live", "copying medications_doselog: 40%"))
    output.show(Event("live", "copying medications_doselog: 80%"))
    assert terminal.getvalue() == (
        f"{CLEAR}copying medications_doselog: 40%{CLEAR}copying medications_doselog: 80%"
    )


def test_a_migration_is_a_live_line_then_its_result_on_a_terminal(monkeypatch):
    terminal = on_terminal(monkeypatch)
    output.show(migration("start"))
    output.show(migration("done", seconds=2.0))
    assert terminal.getvalue() == (
        f"{CLEAR}[2/5] medications.0003_dose_index ..."
        f"{CLEAR}[2/5] medications.0003_dose_index applied in 2.00s\n"
    )


def test_an_undo_is_a_live_line_then_its_result_on_a_terminal(monkeypatch):
    terminal = on_terminal(monkeypatch)
    output.show(migration("start", backwards=True))
    output.show(migration("done", backwards=True, seconds=0.125))
    assert terminal.getvalue() == (
        f"{CLEAR}  unapplying [2/5] medications.0003_dose_index ..."
        f"{CLEAR}  unapplied [2/5] medications.0003_dose_index in 0.12s\n"
    )


# -- the small helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "mark"), [("ok", "✓"), ("warn", "!"), ("fail", "✗")])
def test_mark(capsys, level, mark):
    output.mark(level, "3 orphaned rows")
    assert capsys.readouterr().out == f"{mark} 3 orphaned rows\n"


def test_verdict(capsys):
    output.verdict(True, "data verified")
    output.verdict(False, "2 problems")
    assert capsys.readouterr().out == "OK: data verified\nFAILED: 2 problems\n"


def test_n_has_thousands_separators():
    assert output.n(1_234_567) == "1,234,567"
