"""`python rollback_manager.py emergency-rollback`: the newest backup that validates, then as rollback.

Real backups in the backup directory, damaged for real (flipped bytes, truncation, a backup of
another database); the command must skip and name each one it cannot use.
"""

from __future__ import annotations

from devtools.pg_server import create_database, drop_database
from tests.support import ROLLBACK_PROG as PROG
from tests.support import (
    TEMPLATE_DB,
    Database,
    change_after_backup,
    fingerprint,
    flip_bytes,
    make_backup,
    rollback_log_lines,
    side_databases,
)


def test_skips_and_names_a_corrupted_newest_backup(db: Database) -> None:
    older = make_backup(db, stamp="20260101_000001")
    wanted = fingerprint(db)
    change_after_backup(db)
    newest = make_backup(db, stamp="20260101_000002")
    flip_bytes(newest)

    result = db.rollback_manager("emergency-rollback", "--yes")

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"warning: skipping {newest.name}: SHA-256 does not match")
    assert len(result.stderr.splitlines()) == 1
    out = result.stdout.splitlines()
    assert out[0] == f"Newest valid backup of '{db.name}': {older.name}"
    assert out[-1].startswith(f"OK: database '{db.name}' rolled back to {older.name} in ")
    assert fingerprint(db) == wanted
    assert db.scalar("SELECT to_regclass('after_backup')") is None
    log = "\n".join(rollback_log_lines(db))
    assert "WARNING [emergency-rollback] user=" in log and f"skipped {newest.name}" in log
    assert "emergency-rollback succeeded" in log


def test_skips_truncated_backups_and_ignores_other_databases_backups(db: Database) -> None:
    good = make_backup(db, stamp="20260101_000001")
    wanted = fingerprint(db)
    change_after_backup(db)
    truncated = make_backup(db, stamp="20260101_000002")
    full_size = truncated.stat().st_size
    truncated.write_bytes(truncated.read_bytes()[: full_size // 2])
    other = Database(db.server, f"{db.name}__staging", db.workdir, db.env)
    create_database(db.server, other.name, template=TEMPLATE_DB)
    try:
        foreign = make_backup(other, stamp="20260101_000003")
    finally:
        drop_database(db.server, other.name)

    result = db.rollback_manager("emergency-rollback", "--yes")

    assert result.returncode == 0, result.stderr
    # Another database's backup is not a candidate at all (no warning); a damaged one of this
    # database is named as skipped.
    assert foreign.exists()
    assert result.stderr.splitlines() == [
        f"warning: skipping {truncated.name}: size is {full_size // 2:,} bytes but the "
        f"metadata says {full_size:,} (truncated or replaced)",
    ]
    assert result.stdout.splitlines()[-1].startswith(f"OK: database '{db.name}' rolled back to {good.name}")
    assert fingerprint(db) == wanted


def test_no_valid_backup_changes_nothing(db: Database) -> None:
    only = make_backup(db, stamp="20260101_000001")
    flip_bytes(only)
    change_after_backup(db)
    before = fingerprint(db)

    result = db.rollback_manager("emergency-rollback", "--yes")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"warning: skipping {only.name}: ")
    assert lines[1:] == [
        f"{PROG}: no valid backup of database '{db.name}' in {db.workdir / 'backups'} "
        f"(skipped: {only.name}); nothing was changed; take one with ./production_migrate.sh backup, "
        "or restore a copy kept elsewhere [no-valid-backup]"
    ]
    assert fingerprint(db) == before
    assert side_databases(db) == []


def test_no_terminal_and_no_yes_is_refused(db: Database) -> None:
    make_backup(db, stamp="20260101_000001")
    change_after_backup(db)
    before = fingerprint(db)
    result = db.rollback_manager("emergency-rollback")
    assert result.returncode == 2
    assert result.stderr == (
        f"{PROG}: refusing to roll back without confirmation: stdin is not a terminal and --yes was "
        "not given; nothing was changed; run it on a terminal to confirm, or pass --yes [confirm-needed]\n"
    )
    assert fingerprint(db) == before
