"""`rollback_manager.py validate-backup` against real backups, made bad in every listed way."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest

from tests.support import Database, backup_files, databases, error_line, flip_bytes, resign, take_backup

PROG = "rollback_manager.py"
PREFIXES = ("rollback_manager.py",)




@pytest.fixture
def backed_up(demo_db: Database) -> Database:
    take_backup(demo_db)
    return demo_db


def validate(db: Database, *args: str, **kwargs):
    return db.rollback_manager("validate-backup", *args, **kwargs)


def invalid_line(dump: Path, reason: str) -> str:
    return (
        f"{PROG}: backup {dump.name} is invalid: {reason}; do not restore it; run python rollback_manager.py "
        "list-backups and pick a valid one [backup-invalid]"
    )


def test_a_good_backup_is_valid_at_every_level(backed_up: Database):
    dump, _, _ = backup_files(backed_up)
    shallow = validate(backed_up, f"backups/{dump.name}")
    assert shallow.returncode == 0, shallow.stderr
    assert shallow.stdout.splitlines()[-1] == f"OK: backup {dump.name} is valid (shallow check)"
    assert "✓ table of contents readable (" in shallow.stdout
    by_name = validate(backed_up, dump.name, "--full")
    assert by_name.returncode == 0, by_name.stderr
    assert "✓ every data block reads back (pg_restore -f /dev/null)" in by_name.stdout
    deep = validate(backed_up, str(dump), "--deep")
    assert deep.returncode == 0, deep.stderr
    assert deep.stdout.splitlines()[-1] == f"OK: backup {dump.name} is valid (deep check)"
    assert "match the metadata" in deep.stdout
    assert databases(backed_up, "kitcheck_") == []
    log = (backed_up.workdir / "rollback.log").read_text()
    assert "INFO [validate-backup] user=" in log
    assert f"validate-backup outcome=ok file={dump.name} level=deep" in log
    assert stat.S_IMODE((backed_up.workdir / "rollback.log").stat().st_mode) == 0o600


def test_flipped_bytes_fail_the_checksum(backed_up: Database):
    dump, _, _ = backup_files(backed_up)
    flip_bytes(dump)
    for args in ((), ("--full",), ("--deep",)):
        result = validate(backed_up, dump.name, *args)
        assert result.returncode == 1
        assert error_line(result) == invalid_line(
            dump, "SHA-256 does not match the metadata (the file changed since the backup)"
        )
        assert "✗ SHA-256 does not match" in result.stdout
    log = (backed_up.workdir / "rollback.log").read_text()
    assert "ERROR [validate-backup] user=" in log and "failed: backup " in log
    assert "[backup-invalid] exit=1" in log


def test_a_truncated_backup_is_invalid(backed_up: Database):
    dump, _, _ = backup_files(backed_up)
    size = dump.stat().st_size
    with open(dump, "r+b") as handle:
        handle.truncate(size // 2)
    result = validate(backed_up, dump.name)
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump, f"size is {size // 2:,} bytes but the metadata says {size:,} (truncated or replaced)"
    )


def test_only_the_full_read_catches_damage_the_metadata_was_rewritten_to_match(backed_up: Database):
    """pg_restore --list accepts flipped data bytes; pg_restore -f /dev/null does not."""
    dump, meta_path, _ = backup_files(backed_up)
    flip_bytes(dump, at=0.5, count=8)
    resign(meta_path, sha256=hashlib.sha256(dump.read_bytes()).hexdigest())
    shallow = validate(backed_up, dump.name)
    assert shallow.returncode == 0, shallow.stderr
    full = validate(backed_up, dump.name, "--full")
    assert full.returncode == 1
    last = error_line(full)
    assert last.startswith(
        f"{PROG}: backup {dump.name} is invalid: a full read of the data failed: "
        "pg_restore failed (exit 1): pg_restore: error: "
    )
    assert "[backup-invalid]" in last


def test_missing_metadata_is_invalid(backed_up: Database):
    dump, meta_path, _ = backup_files(backed_up)
    meta_path.unlink()
    result = validate(backed_up, dump.name)
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump, f"metadata file {meta_path.name} is missing (a dump without metadata is not a backup)"
    )


def test_edited_metadata_is_invalid(backed_up: Database):
    dump, meta_path, _ = backup_files(backed_up)
    raw = json.loads(meta_path.read_text())
    raw["row_counts"]["public.users_user"] = 999
    meta_path.write_text(json.dumps(raw, indent=2))
    result = validate(backed_up, dump.name)
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump,
        f"metadata file {meta_path.name} is invalid: it was edited after the backup "
        "(metadata_sha256 does not match its content)",
    )
    meta_path.write_text("{not json")
    result = validate(backed_up, dump.name)
    assert result.returncode == 1
    assert f"metadata file {meta_path.name} is invalid: Expecting property name" in error_line(result)


def test_metadata_that_contradicts_the_archive_is_invalid(backed_up: Database):
    dump, meta_path, _ = backup_files(backed_up)
    toc = json.loads(meta_path.read_text())["toc_entries"]
    resign(meta_path, toc_entries=toc + 1)
    result = validate(backed_up, dump.name)
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump, f"the archive has {toc} TOC entries, the metadata says {toc + 1}"
    )


def test_deep_check_finds_row_counts_that_differ_and_drops_its_scratch_database(backed_up: Database):
    dump, meta_path, _ = backup_files(backed_up)
    counts = json.loads(meta_path.read_text())["row_counts"]
    counts["public.users_user"] = 157
    resign(meta_path, row_counts=counts)
    assert validate(backed_up, dump.name, "--full").returncode == 0
    result = validate(backed_up, dump.name, "--deep")
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump,
        "row counts differ after a test restore: public.users_user has 156 rows, the backup 157",
    )
    assert databases(backed_up, "kitcheck_") == []


def test_deep_check_restore_failing_halfway_still_drops_the_scratch_database(
    backed_up: Database, tmp_path: Path
):
    # Fault: pg_restore restores the schema into the scratch database, then fails before the data.
    real = shutil.which("pg_restore")
    wrapper = tmp_path / "bin" / "pg_restore"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        "set -euo pipefail\n"
        'if [[ " $* " == *" --dbname="* ]]; then\n'
        f'  "{real}" --section=pre-data "$@" || :\n'  # fails at once where the server is older than it
        '  echo "pg_restore: error: injected failure after the schema" >&2\n'
        "  exit 1\n"
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    dump, _, _ = backup_files(backed_up)
    path = f"{wrapper.parent}:{backed_up.env['PATH']}"
    result = validate(backed_up, dump.name, "--deep", env={"PATH": path})
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump,
        "the test restore failed: pg_restore failed (exit 1): "
        "pg_restore: error: injected failure after the schema",
    )
    assert databases(backed_up, "kitcheck_") == []


def test_a_backup_of_another_database_is_named_as_such(backed_up: Database):
    dump, _, _ = backup_files(backed_up)
    result = validate(backed_up, str(dump), env={"DB_NAME": "postgres"})
    assert result.returncode == 1
    assert error_line(result) == invalid_line(
        dump,
        f"this is a backup of database '{backed_up.name}' on 127.0.0.1:{backed_up.server.port}, "
        "not of the current database 'postgres'",
    )


def test_a_path_that_is_not_a_backup_is_bad_input(backed_up: Database):
    result = validate(backed_up, "no_such_backup.sql")
    assert result.returncode == 2
    assert error_line(result) == (
        f"{PROG}: backup 'no_such_backup.sql' not found (looked at it and in {backed_up.workdir}/backups); "
        "run python rollback_manager.py list-backups to see the valid backups [backup-missing]"
    )
    result = validate(backed_up)
    assert result.returncode == 2
    assert "Missing argument 'PATH'" in result.stderr
