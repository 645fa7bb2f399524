"""`backup` end to end on a real PostgreSQL: files, metadata, the rollback script, and every fault.

Faults are real: the pg_dump process is killed, its backend terminated, the backups directory is
a tiny tmpfs (in a private mount namespace), the PATH lacks pg_dump, the password is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from migration_tools.backup import create as backup_mod
from migration_tools.backup import dumping, metadata
from migration_tools.core.sizes import human_size
from tests.support import (
    REPO,
    Database,
    backup_files,
    databases,
    execute,
    listing,
    stderr_last,
    take_backup,
    wait_for,
)

# -- helpers shared with test_backup_validate.py and test_backup_catalog.py ---------------


















def add_filler(db: Database, rows: int, *, incompressible: bool = False) -> None:
    """A table that makes the dump big (incompressible: 1 KiB of random bytes a row)."""
    if incompressible:
        value = (
            "decode((SELECT string_agg(md5(random()::text || g || i), '')"
            " FROM generate_series(1, 64) i), 'hex')"
        )
    else:
        value = "repeat(md5(random()::text), 3)"
    execute(
        db, f"CREATE TABLE zz_filler AS SELECT g AS id, {value} AS payload FROM generate_series(1, {rows}) g"
    )


# -- the happy path -------------------------------------------------------------------------


def test_backup_writes_a_verified_dump_metadata_and_script_owner_only(demo_db: Database):
    result = take_backup(demo_db)
    out = result.stdout.splitlines()
    dump, meta_path, script = backup_files(demo_db)
    assert re.fullmatch(r"medguard_backup_\d{8}_\d{6}\.sql", dump.name)
    assert out[-1].startswith(
        f"OK: backup {dump.name} of {demo_db.name} is complete and verified (full read), "
    )
    assert f"File: backups/{dump.name}" in out
    assert f"SHA-256: {hashlib.sha256(dump.read_bytes()).hexdigest()}" in out
    assert any(line.startswith("Duration: ") for line in out)
    assert f"Size: {dump.stat().st_size:,} bytes" in " ".join(out)
    for path in (dump, meta_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    for directory in ("backups", "rollback_scripts"):
        assert stat.S_IMODE((demo_db.workdir / directory).stat().st_mode) == 0o700
    assert listing(demo_db) == sorted([dump.name, meta_path.name])  # no partial file left

    meta = json.loads(meta_path.read_text())
    assert set(metadata.REQUIRED_KEYS) <= set(meta)
    assert meta["file"] == dump.name and meta["size_bytes"] == dump.stat().st_size
    assert meta["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert (meta["format"], meta["compression"], meta["format_version"], meta["tool"]) == (
        "custom",
        9,
        1,
        "migration_kit",
    )
    assert meta["reason"] == "manual" and meta["kit_profile"] == "standard"
    assert meta["database"] == demo_db.name and meta["port"] == demo_db.server.port
    assert meta["server_version_num"] == int(demo_db.scalar("SHOW server_version_num"))
    assert meta["validated"] == {"full_read": True, "deep": False}
    assert meta["snapshot_consistent"] is True
    created = datetime.fromisoformat(meta["created_at"])
    assert created.utcoffset().total_seconds() == 0
    assert dump.name == f"medguard_backup_{created.strftime('%Y%m%d_%H%M%S')}.sql"
    assert [tuple(p) for p in meta["applied_migrations"]] == sorted(demo_db.applied())
    assert meta["row_counts"]["public.medications_medication"] == 1247
    assert meta["row_counts"]["public.users_user"] == 156
    toc = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
    assert f";     TOC Entries: {meta['toc_entries']}" in toc.stdout

    password = demo_db.server.password
    for path in (dump, meta_path, script, demo_db.workdir / "migration.log"):
        assert password.encode() not in path.read_bytes()
    log = (demo_db.workdir / "migration.log").read_text()
    assert "[backup] user=" in log and f"backup outcome=ok file={dump.name}" in log

    status = demo_db.script("status")
    assert f"Newest backup: {dump.name} ({meta['created_at']})" in status.stdout


def test_row_counts_come_from_the_dumps_snapshot_while_rows_are_being_written(demo_db: Database):
    """A writer inserts all along; the deep check restores the dump and finds the metadata's counts."""
    stop = threading.Event()
    inserted = []

    def writer() -> None:
        with demo_db.connect() as conn:
            while not stop.is_set():
                conn.execute(
                    "INSERT INTO security_securityevent"
                    " (event_type, severity, user_agent, details, created_at)"
                    " SELECT event_type, severity, user_agent, details, now()"
                    " FROM security_securityevent LIMIT 1"
                )
                inserted.append(1)
                time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = demo_db.script("backup", "--deep")
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert "✓ test restore: " in result.stdout and "match the metadata" in result.stdout
    _, meta_path, _ = backup_files(demo_db)
    meta = json.loads(meta_path.read_text())
    assert meta["validated"] == {"full_read": True, "deep": True}
    final = demo_db.scalar("SELECT count(*) FROM security_securityevent")
    assert 89 <= meta["row_counts"]["public.security_securityevent"] < final  # rows kept coming
    assert len(inserted) > 0
    assert databases(demo_db, "kitcheck_") == []


def test_enhanced_profile_validates_by_test_restore(demo_db: Database):
    result = demo_db.run([str(REPO / "production_migrate_enhanced.sh"), "backup"])
    assert result.returncode == 0, result.stderr
    assert "deep validation" in result.stdout.splitlines()[0]
    assert result.stdout.splitlines()[-1].startswith("OK: backup ")
    assert "(full read and test restore)" in result.stdout.splitlines()[-1]
    _, meta_path, _ = backup_files(demo_db)
    meta = json.loads(meta_path.read_text())
    assert meta["kit_profile"] == "enhanced" and meta["validated"]["deep"] is True
    assert databases(demo_db, "kitcheck_") == []


def test_a_second_backup_in_the_same_second_gets_a_suffix(tmp_path: Path):
    moment = datetime(2026, 11, 25, 18, 15, 0, tzinfo=timezone.utc)
    backups, scripts = tmp_path / "backups", tmp_path / "rollback_scripts"
    backups.mkdir()
    scripts.mkdir()
    first = backup_mod.reserve_names(backups, scripts, "medguard", moment)
    second = backup_mod.reserve_names(backups, scripts, "medguard", moment)
    first.dump.write_text("x")
    third = backup_mod.reserve_names(backups, scripts, "medguard", moment)
    assert first.dump.name == "medguard_backup_20261125_181500.sql"
    assert first.partial.name == ".medguard_backup_20261125_181500.sql.partial"
    assert second.dump.name == "medguard_backup_20261125_181500_2.sql"
    assert second.script.name == "rollback_20261125_181500_2.sh"
    assert third.dump.name == "medguard_backup_20261125_181500_3.sql"
    for names in (first, second, third):
        os.close(names.lock_fd)


# -- faults ---------------------------------------------------------------------------------


def _kit_popen(db: Database, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "migration_tools", "backup", *args],
        env=db.env,
        cwd=db.workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )




def _assert_nothing_kept(db: Database) -> None:
    assert listing(db) == []
    assert not list((db.workdir / "rollback_scripts").glob("*"))
    listed = db.rollback_manager("list-backups", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["backups"] == []


def test_pg_dump_killed_halfway_leaves_nothing_and_says_so(demo_db: Database):
    add_filler(demo_db, 200_000)
    proc = _kit_popen(demo_db)
    partial = wait_for(
        lambda: (
            next(iter((demo_db.workdir / "backups").glob(".*.sql.partial")), None)
            if (demo_db.workdir / "backups").exists()
            else None
        ),
        "the partial dump file",
    )
    wait_for(lambda: partial.exists() and partial.stat().st_size > 256 * 1024, "pg_dump to be halfway")
    dumps = [c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "pg_dump"]
    assert len(dumps) == 1
    dumps[0].send_signal(signal.SIGKILL)  # the real pg_dump, mid-write
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines()[-1] == (
        "migration_tools: pg_dump was killed by signal SIGKILL before the dump was complete; "
        "nothing was kept; fix the cause, then run migration_tools backup again [backup-dump]"
    )
    _assert_nothing_kept(demo_db)
    log = (demo_db.workdir / "migration.log").read_text()
    assert "backup pg_dump failed code=-9" in log and "backup outcome=failed" in log


def test_connection_lost_during_the_dump_leaves_nothing(demo_db: Database):
    """pg_dump's backend is terminated while it waits for a table lock held by another session."""
    with demo_db.connect() as blocker:
        blocker.autocommit = False
        blocker.execute("LOCK TABLE medications_medication IN ACCESS EXCLUSIVE MODE")
        proc = _kit_popen(demo_db)
        pid = wait_for(
            lambda: demo_db.query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'migration_kit:backup pg_dump'"
                " AND wait_event_type = 'Lock'"
            ),
            "pg_dump to wait for the lock",
        )[0][0]
        demo_db.query("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.rollback()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("migration_tools: pg_dump failed (exit 1): pg_dump: error: ")
    assert "terminat" in last or "server closed the connection" in last
    assert last.endswith(
        "nothing was kept; fix the cause, then run migration_tools backup again [backup-dump]"
    )
    _assert_nothing_kept(demo_db)


def _in_tmpfs(db: Database, size: str, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `backup` with backups/ on a tmpfs of `size`, in a private mount namespace."""
    (db.workdir / "backups").mkdir()
    script = (
        'mount -t tmpfs -o "size=$1" tmpfs "$2/backups" || exit 99; shift 2; "$@"; rc=$?; '
        'echo "--- backups:"; ls -A "$PM_WORKDIR/backups"; exit $rc'
    )
    # A normal user may mount a tmpfs inside a user namespace where it is mapped to root.
    unshare = ["unshare", "--mount"]
    if os.geteuid() != 0:
        unshare = ["unshare", "--user", "--map-root-user", "--mount"]
    result = db.run(
        [
            *unshare,
            "sh",
            "-c",
            script,
            "sh",
            size,
            str(db.workdir),
            sys.executable,
            "-m",
            "migration_tools",
            "backup",
            *args,
        ]
    )
    assert result.returncode != 99, result.stderr
    files = result.stdout.split("--- backups:\n", 1)[1].split()
    return result, files


def test_disk_full_during_the_dump_leaves_nothing(demo_db: Database):
    add_filler(demo_db, 4096, incompressible=True)  # a ~4 MiB dump; 3 MiB pass the size pre-check
    result, files = _in_tmpfs(demo_db, "3m")
    assert result.returncode == 1, result.stdout + result.stderr
    last = stderr_last(result)
    assert last.startswith("migration_tools: pg_dump failed (exit 1): pg_dump: error: ")
    assert "No space left on device" in last
    assert last.endswith("[backup-dump]")
    assert files == []  # the tmpfs held no file afterwards, not even the partial one
    assert listing(demo_db) == []  # and the directory under the mount is untouched


def test_a_backup_that_obviously_cannot_fit_is_refused_before_dumping(demo_db: Database):
    size = int(demo_db.scalar("SELECT pg_database_size(current_database())"))
    result, files = _in_tmpfs(demo_db, "1m")
    assert result.returncode == 1, result.stdout + result.stderr
    need = human_size(dumping.needed_space(size))
    assert stderr_last(result) == (
        f"migration_tools: not enough free space in {demo_db.workdir}/backups: 1.0 MiB free, a backup of "
        f"database '{demo_db.name}' ({human_size(size)}) needs at least {need}; free some space "
        "or remove old backups (python rollback_manager.py cleanup-backups), then run migration_tools "
        "backup [disk-space]"
    )
    assert files == []
    assert "pg_dump" not in result.stdout


def test_pg_dump_missing_is_bad_input_and_changes_nothing(demo_db: Database, tmp_path: Path):
    bin_dir = tmp_path / "bin-without-pg_dump"
    bin_dir.mkdir()
    (bin_dir / "pg_restore").symlink_to(shutil.which("pg_restore"))
    result = demo_db.kit("backup", env={"PATH": str(bin_dir)})
    assert result.returncode == 2
    assert stderr_last(result) == (
        "migration_tools: pg_dump not found on PATH; install the PostgreSQL client tools or add them "
        "to PATH, then run migration_tools status [tool-missing]"
    )
    assert not (demo_db.workdir / "backups").exists()
    assert not (demo_db.workdir / "rollback_scripts").exists()


def test_wrong_password_and_missing_database_change_nothing(demo_db: Database):
    result = demo_db.script("backup", env={"DB_PASSWORD": "Wr0ng-Passw0rd"})
    assert result.returncode == 2
    assert stderr_last(result) == (
        "production_migrate.sh: password authentication failed for user 'postgres' on "
        f"127.0.0.1:{demo_db.server.port}; fix DB_PASSWORD (or DB_USER), then run production_migrate.sh "
        "status [db-auth]"
    )
    assert "Wr0ng-Passw0rd" not in result.stdout + result.stderr
    assert "Wr0ng-Passw0rd" not in (demo_db.workdir / "migration.log").read_text()
    result = demo_db.script("backup", env={"DB_NAME": "no_such_database"})
    assert result.returncode == 2
    assert stderr_last(result) == (
        f"production_migrate.sh: database 'no_such_database' not found on 127.0.0.1:{demo_db.server.port}; "
        "fix DB_NAME or create the database, then run production_migrate.sh status [db-missing]"
    )
    assert not (demo_db.workdir / "backups").exists()


def test_unknown_option_is_refused_before_anything_runs(demo_db: Database):
    result = demo_db.script("backup", "--compress", "6")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "production_migrate.sh: unknown option '--compress'; run 'production_migrate.sh backup --help' "
        "for the options [usage]"
    )
    assert not (demo_db.workdir / "backups").exists()


@pytest.mark.parametrize("reason", ["pre-migrate", "pre-rollback"])
def test_create_backup_records_the_callers_reason(demo_db: Database, reason: str):
    code = (
        "import sys; from migration_tools.core import runtime; "
        "from migration_tools.backup import create as backup; "
        "kit = runtime.start('backup'); r = backup.create_backup(kit, sys.argv[1]); print(r.meta)"
    )
    result = demo_db.run([sys.executable, "-c", code, reason])
    assert result.returncode == 0, result.stderr
    meta = json.loads(Path(result.stdout.strip()).read_text())
    assert meta["reason"] == reason
