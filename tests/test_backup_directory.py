"""The directory tier (MIGRATION_KIT["BACKUP_FORMAT"] = "directory"): pg_dump -Fd -j N end to end.

Real PostgreSQL, real pg_dump/pg_restore: backup, validate (a corrupted file inside the
directory, a file added), list, cleanup, rollback (swap and in place), emergency-rollback and the
standalone script, all on directory backups; bad tier settings refused before anything is done.
Faults are real: a file-size limit that kills pg_dump's workers halfway, bytes flipped on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from migration_tools.backup import metadata
from tests.support import (
    ROLLBACK_PROG,
    Database,
    change_after_backup,
    databases,
    fault_bin,
    fingerprint,
    flip_bytes,
    resign,
    side_databases,
    stderr_last,
    use_kit_settings,
    wait_for,
)

SCRIPT_PROG = "production_migrate.sh"
DEMO_SETTINGS = "medguard_backend.settings.production"
FAILING_SETTINGS = "tests.fixtures.failing_settings"  # the demo plus an app whose 0002 fails


def use_settings(db: Database, tmp_path: Path, base: str = DEMO_SETTINGS, **kit: object) -> None:
    """Run the kit with the settings module `base` plus these MIGRATION_KIT keys (a real module)."""
    use_kit_settings(db, tmp_path / "settings", kit, base)


@pytest.fixture
def ddb(db: Database, tmp_path: Path) -> Iterator[Database]:
    """The demo database; the kit takes directory backups with 2 jobs."""
    use_settings(db, tmp_path, BACKUP_FORMAT="directory", BACKUP_JOBS=2)
    yield db


def backup(db: Database, *args: str) -> Path:
    result = db.script("backup", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    name = re.search(r"^File: backups/(\S+)$", result.stdout, re.MULTILINE)
    assert name, result.stdout
    return db.workdir / "backups" / name.group(1)


def manifest_sha256(directory: Path) -> str:
    """What the README says the metadata records: sha256 of `sha256sum`'s lines, files in name order."""
    out = subprocess.run(
        "find . -maxdepth 1 -type f -printf '%f\\0' | LC_ALL=C sort -z | xargs -0 sha256sum --",
        shell=True, cwd=directory, capture_output=True, check=True,
    ).stdout
    return hashlib.sha256(out).hexdigest()


def largest_data_file(directory: Path) -> Path:
    return max(directory.glob("*.dat.gz"), key=lambda p: p.stat().st_size)


def script_for(dump: Path) -> Path:
    return metadata.script_path_for(dump, dump.parent.parent / "rollback_scripts")


# -- backup ------------------------------------------------------------------------------------


def test_a_directory_backup_is_a_parallel_dump_checked_and_owner_only(ddb: Database):
    result = ddb.script("backup")
    assert result.returncode == 0, result.stderr
    dump = backup_path = ddb.workdir / "backups" / re.search(r"File: backups/(\S+)", result.stdout).group(1)
    assert re.fullmatch(r"medguard_backup_\d{8}_\d{6}\.dir", dump.name)
    assert f"pg_dump -Fd -Z9 -j2 of {ddb.name} into {dump.name} ..." in result.stdout
    assert "full read: every data block decompresses (pg_restore -f /dev/null)" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"OK: backup {dump.name} of {ddb.name} is complete")
    assert backup_path.is_dir() and stat.S_IMODE(dump.stat().st_mode) == 0o700
    files = sorted(dump.iterdir())
    assert "toc.dat" in [p.name for p in files] and len(list(dump.glob("*.dat.gz"))) >= 10
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert sorted(os.listdir(ddb.workdir / "backups")) == sorted([dump.name, dump.with_suffix(".json").name])

    meta = json.loads(dump.with_suffix(".json").read_text())
    assert (meta["format"], meta["compression"], meta["file"]) == ("directory", 9, dump.name)
    assert meta["size_bytes"] == sum(p.stat().st_size for p in files)
    assert meta["sha256"] == manifest_sha256(dump)
    assert meta["validated"] == {"full_read": True, "deep": False} and meta["snapshot_consistent"]
    assert meta["row_counts"]["public.medications_medication"] == 1247
    toc = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
    assert f";     TOC Entries: {meta['toc_entries']}" in toc.stdout and "Format: DIRECTORY" in toc.stdout
    script = script_for(dump)
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    password = ddb.server.password.encode()
    for path in [*files, dump.with_suffix(".json"), script, ddb.workdir / "migration.log"]:
        assert password not in path.read_bytes()
    assert "format=directory jobs=2" in (ddb.workdir / "migration.log").read_text()
    assert f"Newest backup: {dump.name}" in ddb.script("status").stdout


def test_row_counts_and_the_parallel_workers_share_one_snapshot_while_rows_are_written(ddb: Database):
    """A writer inserts all along; the deep check restores the directory and finds the metadata's counts."""
    import threading
    import time

    stop = threading.Event()

    def writer() -> None:
        with ddb.connect() as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO security_securityevent (event_type, severity, user_agent, details, "
                             "created_at) SELECT event_type, severity, user_agent, details, now() "
                             "FROM security_securityevent LIMIT 1")
                time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        dump = backup(ddb, "--deep")
    finally:
        stop.set()
        thread.join()
    meta = json.loads(dump.with_suffix(".json").read_text())
    assert meta["validated"] == {"full_read": True, "deep": True}
    final = ddb.scalar("SELECT count(*) FROM security_securityevent")
    assert 89 <= meta["row_counts"]["public.security_securityevent"] < final
    assert databases(ddb, "kitcheck_") == []


def test_pg_dump_killed_halfway_leaves_nothing(ddb: Database, tmp_path: Path):
    env = fault_bin(tmp_path, "pg_dump", 'ulimit -f 8\nexec REAL "$@"\n')  # 4 KiB a file: SIGXFSZ
    result = ddb.script("backup", env=env)
    assert result.returncode == 1, result.stdout
    line = stderr_last(result)
    assert line.startswith(f"{SCRIPT_PROG}: pg_dump ") and line.endswith(
        f"; nothing was kept; fix the cause, then run {SCRIPT_PROG} backup again [backup-dump]"
    )
    assert os.listdir(ddb.workdir / "backups") == []
    assert os.listdir(ddb.workdir / "rollback_scripts") == []


def test_sigterm_while_the_workers_write_stops_them_and_keeps_nothing(ddb: Database):
    with ddb.connect() as conn:  # two big tables: both workers are busy for a while
        for table in ("zz_filler_a", "zz_filler_b"):
            conn.execute(f"CREATE TABLE {table} AS SELECT g AS id, repeat(md5(random()::text), 4) AS payload "
                         "FROM generate_series(1, 400000) g")
    proc = subprocess.Popen(
        [sys.executable, "-m", "migration_tools", "backup"], env=ddb.env, cwd=ddb.workdir,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    backups = ddb.workdir / "backups"
    partial = wait_for(lambda: next(iter(backups.glob(".*.dir.partial")), None) if backups.exists() else None,
                       "the partial directory")
    wait_for(lambda: sum(p.stat().st_size for p in partial.glob("*.dat.gz")) > 512 * 1024,
             "the workers to be writing")
    dumps = [c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "pg_dump"]
    assert len(dumps) == 3  # the leader and its two workers
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines()[-1] == (
        "migration_tools: the backup was interrupted by SIGTERM; nothing was kept (pg_dump was stopped and "
        "its partial files removed); run migration_tools backup again when ready [backup-interrupted]"
    )
    assert os.listdir(backups) == [] and os.listdir(ddb.workdir / "rollback_scripts") == []
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in dumps)


# -- validate ----------------------------------------------------------------------------------


def validate(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return db.rollback_manager("validate-backup", *args)


def test_validate_backup_checks_every_file_of_the_directory(ddb: Database):
    dump = backup(ddb)
    for level, args in (("shallow", ()), ("full", ("--full",)), ("deep", ("--deep",))):
        result = validate(ddb, dump.name, *args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == f"OK: backup {dump.name} is valid ({level} check)"
    files = len(list(dump.iterdir()))
    assert f" bytes, {files} files)" in validate(ddb, dump.name).stdout
    assert databases(ddb, "kitcheck_") == []

    victim = largest_data_file(dump)
    flip_bytes(victim, at=0.5)
    result = validate(ddb, dump.name)
    assert result.returncode == 1
    assert stderr_last(result) == (
        f"{ROLLBACK_PROG}: backup {dump.name} is invalid: SHA-256 does not match the metadata (a file in "
        "the directory changed since the backup); do not restore it; run python rollback_manager.py "
        "list-backups and pick a valid one [backup-invalid]"
    )
    # Metadata re-signed to the damaged bytes: only reading every data block finds it.
    resign(dump.with_suffix(".json"), sha256=manifest_sha256(dump))
    assert validate(ddb, dump.name).returncode == 0
    full = validate(ddb, dump.name, "--full")
    assert full.returncode == 1
    assert "is invalid: a full read of the data failed: pg_restore failed (exit 1): " in stderr_last(full)

    (dump / "notes.txt").write_text("an extra file")
    assert f"backup {dump.name} is invalid: size is " in stderr_last(validate(ddb, dump.name))


# -- list and cleanup --------------------------------------------------------------------------


def test_list_and_cleanup_treat_the_directory_as_one_backup(ddb: Database):
    older = backup(ddb)
    newer = backup(ddb)
    size = sum(p.stat().st_size for p in newer.iterdir())
    listing = ddb.rollback_manager("list-backups", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)["backups"]
    assert [r["file"] for r in rows] == [newer.name, older.name]
    assert rows[0]["size_bytes"] == size and rows[0]["valid"] is True
    text = ddb.rollback_manager("list-backups").stdout
    assert any(line.startswith(newer.name) and line.endswith("yes") for line in text.splitlines())

    leftover = metadata.partial_path_for(ddb.workdir / "backups" / "medguard_backup_20240101_000000.dir")
    leftover.mkdir(mode=0o700)
    (leftover / "toc.dat").write_bytes(b"PGDMP")
    result = ddb.rollback_manager("cleanup-backups", "--keep", "1")
    assert result.returncode == 0, result.stderr
    assert f"Removing {older.name}" in result.stdout
    assert f"Removing leftover {leftover.name} (from an interrupted backup)" in result.stdout
    assert set(os.listdir(ddb.workdir / "backups")) == {newer.with_suffix(".json").name, newer.name}
    assert not script_for(older).exists() and script_for(newer).exists()


# -- rollback ----------------------------------------------------------------------------------


def test_rollback_restores_a_directory_backup_with_parallel_jobs(ddb: Database):
    dump = backup(ddb)
    wanted = fingerprint(ddb)
    change_after_backup(ddb)
    result = ddb.rollback_manager("rollback", dump.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert "(pg_restore --jobs=2)" in result.stdout
    ok = f"OK: database '{ddb.name}' rolled back to {dump.name} in "
    assert result.stdout.splitlines()[-1].startswith(ok)
    assert fingerprint(ddb) == wanted
    assert len(side_databases(ddb)) == 1  # the replaced database, kept


def test_rollback_in_place_takes_a_directory_safety_backup(ddb: Database):
    dump = backup(ddb)
    wanted = fingerprint(ddb)
    change_after_backup(ddb)
    result = ddb.rollback_manager("rollback", f"backups/{dump.name}", "--yes", "--in-place")
    assert result.returncode == 0, result.stderr
    assert fingerprint(ddb) == wanted
    safety = [p for p in (ddb.workdir / "backups").glob("*.dir") if p != dump]
    assert len(safety) == 1
    assert json.loads(safety[0].with_suffix(".json").read_text())["reason"] == "pre-rollback"


def test_emergency_rollback_skips_a_directory_with_a_corrupted_file(ddb: Database):
    older = backup(ddb)
    wanted = fingerprint(ddb)
    change_after_backup(ddb)
    newest = backup(ddb)
    flip_bytes(largest_data_file(newest), at=0.5)
    result = ddb.rollback_manager("emergency-rollback", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"warning: skipping {newest.name}: SHA-256 does not match")
    assert result.stdout.splitlines()[0] == f"Newest valid backup of '{ddb.name}': {older.name}"
    assert fingerprint(ddb) == wanted


def test_a_failed_migrate_is_undone_from_its_directory_pre_migrate_backup(db: Database, tmp_path: Path):
    use_settings(db, tmp_path, FAILING_SETTINGS, BACKUP_FORMAT="directory", BACKUP_JOBS=2)
    before = db.applied()
    result = db.script("migrate", "--commit-each", env={"FAILING_APP_MODE": "irreversible"})
    assert result.returncode == 3, result.stdout + result.stderr
    (backup_dir,) = (db.workdir / "backups").glob("medguard_backup_*.dir")
    out = result.stdout.splitlines()
    assert f"Nobody else wrote since {backup_dir.name}: restoring it ..." in out
    assert out[-1] == (
        f"Rolled back (restoring {backup_dir.name}): the applied migrations equal those before the run."
    )
    assert db.applied() == before
    assert db.scalar("SELECT count(*) FROM medguard_notifications_notification") == 234  # purged, then back


def test_the_standalone_script_restores_a_directory_backup(ddb: Database):
    dump = backup(ddb)
    wanted = fingerprint(ddb)
    change_after_backup(ddb)
    script = script_for(dump)
    assert "readonly BACKUP_FORMAT=directory" in script.read_text()
    result = ddb.run([str(script), "--yes"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"OK: restored {dump.name} into {ddb.name} on 127.0.0.1:{ddb.server.port}"
    )
    assert fingerprint(ddb) == wanted

    flip_bytes(largest_data_file(dump), at=0.5)
    before = side_databases(ddb)
    result = ddb.run([str(script), "--yes"])
    assert result.returncode == 1
    assert stderr_last(result) == (
        f"{script.name}: the SHA-256 of {dump.name} does not match the one recorded at backup time "
        "(a file in it is corrupted or was changed); nothing was restored; pick another backup"
    )
    assert side_databases(ddb) == before


# -- bad settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kit", "error"),
    [
        ({"BACKUP_FORMAT": "tar"},
         "MIGRATION_KIT['BACKUP_FORMAT'] is 'tar', not one of 'custom', 'directory', 'pgbackrest'; "
         "fix it in the settings module, then run {status} [settings-backup-format]"),
        ({"BACKUP_FORMAT": "directory", "BACKUP_JOBS": 0},
         "MIGRATION_KIT['BACKUP_JOBS'] is 0, not a whole number of at least 1; "
         "fix it in the settings module, then run {status} [settings-backup-jobs]"),
        ({"BACKUP_JOBS": "4"},
         "MIGRATION_KIT['BACKUP_JOBS'] is '4', not a whole number of at least 1; "
         "fix it in the settings module, then run {status} [settings-backup-jobs]"),
    ],
)
def test_a_bad_tier_setting_is_refused_before_anything_is_done(db: Database, tmp_path: Path, kit, error):
    use_settings(db, tmp_path, **kit)
    before = fingerprint(db)
    result = db.script("backup")
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip().splitlines() == [
        f"{SCRIPT_PROG}: " + error.format(status=f"{SCRIPT_PROG} status")
    ]
    assert not (db.workdir / "backups").exists()
    manager = db.rollback_manager("emergency-rollback", "--yes")
    assert manager.returncode == 2
    assert manager.stderr.strip().splitlines() == [
        f"{ROLLBACK_PROG}: " + error.format(status=f"./{SCRIPT_PROG} status")
    ]
    assert fingerprint(db) == before and side_databases(db) == []
