"""`list-backups` and `cleanup-backups`: order by metadata time, validity, retention, leftovers."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support import Database, backup_files, error_line, flip_bytes, resign, stderr_last, take_backup


def clone(db: Database, stamp: str, created: str) -> Path:
    """A valid copy of the real backup under another timestamp, with its own metadata and script."""
    dump, meta_path, script = backup_files_first(db)
    new_dump = dump.with_name(f"medguard_backup_{stamp}.sql")
    shutil.copy2(dump, new_dump)
    new_meta = new_dump.with_suffix(".json")
    shutil.copy2(meta_path, new_meta)
    resign(new_meta, file=new_dump.name, created_at=created)
    shutil.copy2(script, script.with_name(f"rollback_{stamp}.sh"))
    return new_dump


_FIRST: dict[str, tuple[Path, Path, Path]] = {}


def backup_files_first(db: Database) -> tuple[Path, Path, Path]:
    if db.name not in _FIRST:
        _FIRST[db.name] = backup_files(db)
    return _FIRST[db.name]


@pytest.fixture
def shelf(demo_db: Database) -> Database:
    """Backups whose names and creation times disagree, one corrupted, plus leftovers."""
    take_backup(demo_db)  # the real one, created now (2026)
    backups = demo_db.workdir / "backups"
    real, _, _ = backup_files_first(demo_db)
    clone(demo_db, "20200101_000000", "2030-01-01T00:00:00.000000+00:00")  # oldest name, newest time
    clone(demo_db, "20990101_000000", "2020-01-01T00:00:00.000000+00:00")  # newest name, oldest time
    flip_bytes(clone(demo_db, "20250101_000000", "2025-01-01T00:00:00.000000+00:00"))
    orphan = backups / "medguard_backup_20240101_000000.sql"  # interrupted: no metadata
    shutil.copy2(real, orphan)
    stamp_2024 = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    os.utime(orphan, (stamp_2024, stamp_2024))
    (backups / ".medguard_backup_20240202_000000.sql.partial").write_bytes(b"PGDMP")
    (demo_db.workdir / "rollback_scripts" / "rollback_20230101_000000.sh").write_text("#!/bin/sh\n")
    return demo_db


def names_in(directory: Path) -> set[str]:
    return set(os.listdir(directory))


def test_list_backups_is_newest_first_by_metadata_time_and_flags_invalid_ones(shelf: Database):
    real, _, _ = backup_files_first(shelf)
    result = shelf.rollback_manager("list-backups")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Backups of database '{shelf.name}' in {shelf.workdir}/backups, newest first:"
    assert lines[1].split() == [
        "File", "Created", "(UTC)", "Size", "Database", "Reason", "Migrations", "Valid"
    ]
    rows = [line.split()[0] for line in lines[2:-1]]
    assert rows == [
        "medguard_backup_20200101_000000.sql",
        real.name,
        "medguard_backup_20250101_000000.sql",
        "medguard_backup_20240101_000000.sql",
        "medguard_backup_20990101_000000.sql",
    ]
    row = {line.split()[0]: line for line in lines[2:-1]}
    assert row[real.name].endswith("  21          yes")
    assert f"  {shelf.name}  manual  " in row[real.name]
    assert row["medguard_backup_20250101_000000.sql"].endswith(
        "NO: SHA-256 does not match the metadata (the file changed since the backup)"
    )
    assert row["medguard_backup_20240101_000000.sql"].endswith(
        "NO: metadata file medguard_backup_20240101_000000.json is missing "
        "(a dump without metadata is not a backup)"
    )
    assert "2024-01-01 00:00:00 (mtime)" in row["medguard_backup_20240101_000000.sql"]
    assert lines[-1] == "OK: 5 backup(s), 3 valid; newest valid: medguard_backup_20200101_000000.sql"

    as_json = shelf.rollback_manager("list-backups", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [b["file"] for b in data["backups"]] == rows
    assert [b["valid"] for b in data["backups"]] == [True, True, False, False, True]
    assert data["backups"][0]["created_at"] == "2030-01-01T00:00:00.000000+00:00"
    assert data["backups"][1]["migrations"] == 21 and data["backups"][1]["database"] == shelf.name
    log = (shelf.workdir / "rollback.log").read_text()
    assert "INFO [list-backups] user=" in log and "list-backups outcome=ok backups=5 valid=3" in log


def test_list_backups_with_no_directory_says_so(demo_db: Database):
    result = demo_db.rollback_manager("list-backups")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"No backups in {demo_db.workdir}/backups.",
        "OK: no backups yet; take one with ./production_migrate.sh backup",
    ]


def test_cleanup_dry_run_then_real_run_keeps_the_newest_by_metadata_time(shelf: Database):
    backups, scripts = shelf.workdir / "backups", shelf.workdir / "rollback_scripts"
    real, _, _ = backup_files_first(shelf)
    before = (names_in(backups), names_in(scripts))
    dry = shelf.rollback_manager("cleanup-backups", "--keep", "2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[1:] == [
        "Would remove leftover medguard_backup_20240101_000000.sql (from an interrupted backup)",
        "Would remove leftover .medguard_backup_20240202_000000.sql.partial (from an interrupted backup)",
        "Would remove leftover rollback_20230101_000000.sh (from an interrupted backup)",
        "OK: dry run: would remove 1 backup(s) and 3 leftover file(s); keeping 2 valid backup(s), newest "
        "medguard_backup_20200101_000000.sql; nothing was changed",
    ]
    assert dry.stdout.startswith(
        "Would remove medguard_backup_20990101_000000.sql (created 2020-01-01 00:00:00, "
    )
    assert dry.stderr.splitlines() == [
        "warning: kept invalid backup medguard_backup_20250101_000000.sql (SHA-256 does not match the "
        "metadata (the file changed since the backup)); inspect it or delete it by hand"
    ]
    assert (names_in(backups), names_in(scripts)) == before

    run = shelf.rollback_manager("cleanup-backups", "--keep", "2")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == (
        "OK: removed 1 backup(s) and 3 leftover file(s); keeping 2 valid backup(s), newest "
        "medguard_backup_20200101_000000.sql"
    )
    stamp = real.name.removeprefix("medguard_backup_").removesuffix(".sql")
    assert names_in(backups) == {
        "medguard_backup_20200101_000000.sql",
        "medguard_backup_20200101_000000.json",
        real.name,
        real.with_suffix(".json").name,
        "medguard_backup_20250101_000000.sql",
        "medguard_backup_20250101_000000.json",
    }
    assert names_in(scripts) == {
        "rollback_20200101_000000.sh",
        f"rollback_{stamp}.sh",
        "rollback_20250101_000000.sh",
    }
    log = (shelf.workdir / "rollback.log").read_text()
    assert "cleanup-backups removed " in log and "medguard_backup_20990101_000000.json" in log
    assert "cleanup-backups outcome=ok removed 1 backup(s)" in log


def test_cleanup_older_than_and_never_the_newest_valid_backup(shelf: Database):
    backups = shelf.workdir / "backups"
    real, _, _ = backup_files_first(shelf)
    none = shelf.rollback_manager("cleanup-backups", "--keep", "1", "--older-than", "36500")
    assert none.returncode == 0, none.stderr
    assert "removed 0 backup(s)" in none.stdout.splitlines()[-1]
    # The newest by time (created 2030) is corrupted now: the newest *valid* one must stay.
    flip_bytes(backups / "medguard_backup_20200101_000000.sql")
    result = shelf.rollback_manager("cleanup-backups", "--keep", "1", "--older-than", "365")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(
        "Removing medguard_backup_20990101_000000.sql (created 2020-01-01"
    )
    assert result.stdout.splitlines()[-1] == (
        f"OK: removed 1 backup(s) and 0 leftover file(s); keeping 1 valid backup(s), newest {real.name}"
    )
    assert real.exists() and real.with_suffix(".json").exists()
    assert (backups / "medguard_backup_20200101_000000.sql").exists()  # invalid: kept as evidence


def test_cleanup_skips_a_partial_file_a_running_backup_holds(demo_db: Database):
    take_backup(demo_db)
    partial = demo_db.workdir / "backups" / ".medguard_backup_20991231_000000.sql.partial"
    with open(partial, "wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # what backup.reserve_names holds while writing
        result = demo_db.rollback_manager("cleanup-backups")
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [
            f"warning: skipped {partial.name}: a running backup is writing it"
        ]
        assert partial.exists()
    result = demo_db.rollback_manager("cleanup-backups")
    assert "1 leftover file(s)" in result.stdout.splitlines()[-1]
    assert not partial.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--keep", "0"),
            "--keep 0 would leave no backup (the newest valid backup is never removed); "
            "pass --keep 1 or more [keep-invalid]",
        ),
        (("--older-than", "-1"), "--older-than -1 is negative; pass 0 or more days [older-than-invalid]"),
    ],
)
def test_cleanup_refuses_bad_numbers(demo_db: Database, args: tuple[str, ...], expected: str):
    result = demo_db.rollback_manager("cleanup-backups", *args)
    assert result.returncode == 2
    assert error_line(result) == f"rollback_manager.py: {expected}"
    assert stderr_last(result).endswith(expected)
