"""backups/inventory.py resolve(): which dump a name or path given on the command line means."""

from pathlib import Path

import pytest

from migration_tools.backup.inventory import resolve
from migration_tools.core.errors import EXIT_USAGE, BadInput

DUMP = "medguard_backup_20261125_181500.sql"
META = "medguard_backup_20261125_181500.json"
HINT = "run python rollback_manager.py list-backups to see the valid backups"


@pytest.fixture
def project(tmp_path):
    """A working directory with backups/ holding one complete backup, and an empty cwd elsewhere."""
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / DUMP).write_bytes(b"PGDMP")
    (backups / META).write_text("{}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return tmp_path, backups.resolve(), elsewhere


def refused(text, backups, **kwargs):
    with pytest.raises(BadInput) as caught:
        resolve(text, backups, **kwargs)
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.hint == HINT
    return caught.value


def test_a_bare_name_is_the_dump_in_the_backup_directory(project):
    _, backups, elsewhere = project
    assert resolve(DUMP, backups, cwd=elsewhere) == backups / DUMP


def test_a_metadata_name_means_its_dump(project):
    _, backups, elsewhere = project
    assert resolve(META, backups, cwd=elsewhere) == backups / DUMP


def test_a_metadata_name_means_its_dump_even_when_the_dump_is_gone(project):
    _, backups, elsewhere = project
    (backups / DUMP).unlink()
    assert resolve(META, backups, cwd=elsewhere) == backups / DUMP


def test_a_relative_path_into_the_backup_directory_is_taken(project):
    root, backups, _ = project
    assert resolve(f"backups/{DUMP}", backups, cwd=root) == backups / DUMP


def test_an_absolute_path_into_the_backup_directory_is_taken(project):
    _, backups, elsewhere = project
    assert resolve(str(backups / DUMP), backups, cwd=elsewhere) == backups / DUMP


def test_a_path_with_dot_dot_is_refused_for_a_restore(project):
    _, backups, elsewhere = project
    text = f"../backups/{DUMP}"
    error = refused(text, backups, cwd=elsewhere)
    assert error.error_id == "backup-path"
    assert error.message == f"'{text}' contains '..'; give a backup's file name from {backups}"


def test_a_path_with_dot_dot_is_taken_for_validation(project):
    _, backups, elsewhere = project
    assert resolve(f"../backups/{DUMP}", backups, anywhere=True, cwd=elsewhere) == backups / DUMP


def test_an_absolute_path_outside_the_backup_directory_is_refused_for_a_restore(project):
    _, backups, elsewhere = project
    copy = elsewhere / DUMP
    copy.write_bytes(b"PGDMP")
    error = refused(str(copy), backups, cwd=elsewhere)
    assert error.error_id == "backup-path"
    assert error.message == f"'{copy}' is not inside the backup directory {backups}"


def test_an_absolute_path_outside_the_backup_directory_is_taken_for_validation(project):
    _, backups, elsewhere = project
    copy = elsewhere / DUMP
    copy.write_bytes(b"PGDMP")
    assert resolve(str(copy), backups, anywhere=True, cwd=elsewhere) == copy.resolve()


def test_a_symlink_in_the_backup_directory_pointing_out_of_it_is_refused(project):
    _, backups, elsewhere = project
    target = elsewhere / "medguard_backup_20200101_000000.sql"
    target.write_bytes(b"PGDMP")
    (backups / target.name).symlink_to(target)
    error = refused(target.name, backups, cwd=elsewhere)
    assert error.message == f"'{target.name}' is not inside the backup directory {backups}"


def test_for_a_restore_a_bare_name_is_always_the_backup_directory_one(project):
    _, backups, elsewhere = project
    (elsewhere / DUMP).write_bytes(b"PGDMP")  # a copy in the current directory is not restored
    assert resolve(DUMP, backups, cwd=elsewhere) == backups / DUMP


def test_for_validation_a_bare_name_in_the_current_directory_wins(project):
    _, backups, elsewhere = project
    (elsewhere / DUMP).write_bytes(b"PGDMP")
    assert resolve(DUMP, backups, anywhere=True, cwd=elsewhere) == elsewhere.resolve() / DUMP


def test_for_validation_a_bare_name_not_in_the_current_directory_is_looked_up_in_the_backups(project):
    _, backups, elsewhere = project
    assert resolve(DUMP, backups, anywhere=True, cwd=elsewhere) == backups / DUMP


def test_a_missing_backup_for_a_restore_names_the_file_and_the_directory(project, monkeypatch):
    _, backups, elsewhere = project
    monkeypatch.setenv("PM_PROG", "rollback_manager.py")
    error = refused("medguard_backup_20200101_000000.json", backups, cwd=elsewhere)
    assert error.error_id == "backup-missing"
    assert error.line() == (
        f"rollback_manager.py: backup 'medguard_backup_20200101_000000.sql' not found in {backups}; "
        f"{HINT} [backup-missing]"
    )


def test_a_missing_backup_for_validation_names_what_was_typed_and_where_it_looked(project):
    _, backups, elsewhere = project
    error = refused("copies/medguard_backup_20200101_000000.sql", backups, anywhere=True, cwd=elsewhere)
    assert error.error_id == "backup-missing"
    assert error.message == (
        f"backup 'copies/medguard_backup_20200101_000000.sql' not found (looked at it and in {backups})"
    )


def test_a_file_that_is_not_a_dump_is_refused(project):
    _, backups, elsewhere = project
    (backups / "notes.txt").write_text("keep the March backup")
    error = refused("notes.txt", backups, cwd=elsewhere)
    assert error.error_id == "backup-name"
    assert error.message == (
        "'notes.txt' is not a backup dump (expected <prefix>_backup_<timestamp>.sql or .dir)")


def test_a_relative_backup_directory_is_reported_resolved(project, monkeypatch):
    root, backups, elsewhere = project
    monkeypatch.chdir(root)
    error = refused("medguard_backup_20200101_000000.sql", Path("backups"), cwd=elsewhere)
    assert error.message == f"backup 'medguard_backup_20200101_000000.sql' not found in {backups}"
