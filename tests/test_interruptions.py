"""Ctrl-C and SIGTERM: every command stops at a known state and says which, in one line.

Real signals to real processes: SIGTERM to the whole process group (a deploy system's timeout),
SIGINT to the kit alone (Ctrl-C), while a migration waits for a lock another session holds, while
pg_dump writes, while a deep check restores, while a rollback restores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support import REPO, Database, databases, fault_bin, listing, make_backup, side_databases, wait_for

# A client tool that signals it started (a marker file) and then waits to be killed: the kit is
# interrupted while the tool runs.
BLOCKING_TOOL = """
# Fault: this run of the tool never finishes by itself; it leaves a marker and waits.
for arg in "$@"; do
  if [[ $arg == *WHEN* ]]; then
    : > "$MARKER"
    sleep 600
  fi
done
exec REAL "$@"
"""


def start(db: Database, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, env=db.env | (env or {}), cwd=db.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def waiting_for_a_lock(db: Database, query_start: str) -> int:
    return int(db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
        "AND query LIKE %s", (db.name, query_start + "%"),
    ))


def statements_still_running(db: Database, query_start: str) -> int:
    return int(db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query LIKE %s",
        (db.name, query_start + "%"),
    ))


@pytest.mark.parametrize(("sig", "whom"), [(signal.SIGTERM, "group"), (signal.SIGINT, "process")])
def test_a_signal_while_a_migration_waits_for_its_lock_cancels_it_and_rolls_back(
    demo_db: Database, sig: signal.Signals, whom: str
):
    """Another session holds the dose-log table; the release's CREATE INDEX queues behind it."""
    before = demo_db.applied()
    with psycopg.connect(host="127.0.0.1", port=demo_db.server.port, user="postgres",
                         password=demo_db.server.password, dbname=demo_db.name) as holder:
        holder.execute("LOCK TABLE medications_doselog IN ACCESS EXCLUSIVE MODE")
        proc = start(demo_db, [str(REPO / "production_migrate.sh"), "migrate", "--no-backup"])
        wait_for(lambda: waiting_for_a_lock(demo_db, "CREATE INDEX"), "the migration to queue for its lock")
        if whom == "group":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        # Cancelled on the server, not left queued in front of the application's queries.
        assert statements_still_running(demo_db, "CREATE INDEX") == 0
    assert proc.returncode == 3, out + err
    assert err.strip().splitlines()[-1] == (
        f"production_migrate.sh: interrupted by {sig.name} during migration "
        "medications.0003_doselog_scheduled_at_idx; the database was rolled back to its state before "
        "this run (the whole plan ran in one transaction: PostgreSQL rolled it back); run "
        "production_migrate.sh migrate again when ready [migrate-rolled-back]"
    )
    assert f"INTERRUPTED by {sig.name} during medications.0003_doselog_scheduled_at_idx" in out.splitlines()
    assert demo_db.applied() == before
    log = (demo_db.workdir / "migration.log").read_text()
    assert f"interrupted by {sig.name} during medications.0003_doselog_scheduled_at_idx" in log
    # The deploy lock is free again: the next run goes through.
    assert demo_db.script("migrate", "--no-backup").returncode == 0


def test_sigterm_while_pg_dump_writes_keeps_nothing_and_says_so(demo_db: Database, tmp_path: Path):
    marker = tmp_path / "started"
    env = fault_bin(tmp_path, "pg_dump", BLOCKING_TOOL.replace("WHEN", "--snapshot"))
    env["MARKER"] = str(marker)
    proc = start(demo_db, [str(REPO / "production_migrate.sh"), "backup"], env)
    wait_for(marker.exists, "pg_dump to start")
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines()[-1] == (
        "production_migrate.sh: the backup was interrupted by SIGTERM; nothing was kept (pg_dump was "
        "stopped and its partial files removed); run production_migrate.sh backup again when ready "
        "[backup-interrupted]"
    )
    assert listing(demo_db) == []


def test_sigterm_during_a_deep_check_drops_its_scratch_database(demo_db: Database, tmp_path: Path):
    dump = make_backup(demo_db)
    marker = tmp_path / "started"
    env = fault_bin(tmp_path, "pg_restore", BLOCKING_TOOL.replace("WHEN", "kitcheck_"))
    proc = start(demo_db, [sys.executable, str(REPO / "rollback_manager.py"), "validate-backup", dump.name,
                           "--deep"], env | {"MARKER": str(marker)})
    wait_for(marker.exists, "the test restore to start")
    assert databases(demo_db, "kitcheck_") != []
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines()[-1] == (
        "rollback_manager.py: interrupted by SIGTERM before the command finished; run "
        "./production_migrate.sh status to see where the database stands [interrupted]"
    )
    assert databases(demo_db, "kitcheck_") == []


def test_sigterm_during_a_rollbacks_restore_leaves_the_database_as_it_was(db: Database, tmp_path: Path):
    dump = make_backup(db)
    with db.connect() as conn:
        conn.execute("CREATE TABLE after_backup AS SELECT 1 AS id")
    marker = tmp_path / "started"
    env = fault_bin(tmp_path, "pg_restore", BLOCKING_TOOL.replace("WHEN", f"{db.name}__restore_"))
    proc = start(db, [sys.executable, str(REPO / "rollback_manager.py"), "rollback", dump.name, "--yes"],
                 env | {"MARKER": str(marker)})
    wait_for(marker.exists, "the restore to start")
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines()[-1] == (
        f"rollback_manager.py: the rollback was interrupted by SIGTERM; database '{db.name}' is as it was; "
        "run the rollback again when ready (python rollback_manager.py list-backups) [rollback-interrupted]"
    )
    assert side_databases(db) == []
    assert db.scalar("SELECT datallowconn FROM pg_database WHERE datname = %s", (db.name,)) is True
    assert db.scalar("SELECT to_regclass('after_backup') IS NOT NULL")


def test_a_run_killed_outright_is_shown_by_status_and_migrate_until_resolved(demo_db: Database):
    """SIGKILL (nothing can be handled) after the first of a --commit-each run's migrations."""
    env = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.failing_settings"}
    with psycopg.connect(host="127.0.0.1", port=demo_db.server.port, user="postgres",
                         password=demo_db.server.password, dbname=demo_db.name) as holder:
        # The second migration of the plan (failing_app.0001_probe) queues behind this lock.
        holder.execute("CREATE TABLE IF NOT EXISTS failing_app_probe (id int)")
        holder.execute("LOCK TABLE failing_app_probe IN ACCESS EXCLUSIVE MODE")
        proc = start(demo_db, [str(REPO / "production_migrate.sh"), "migrate", "--commit-each"], env)
        wait_for(lambda: waiting_for_a_lock(demo_db, "CREATE TABLE"), "the second migration to queue")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        holder.execute("DROP TABLE failing_app_probe")
    assert ("medications", "0003_doselog_scheduled_at_idx") in demo_db.applied()
    status = demo_db.script("status", env=env)
    [line] = [ln for ln in status.stdout.splitlines() if ln.startswith("! unfinished run: ")]
    assert "an earlier migrate (pid " in line
    assert ("did not finish; 1 migration(s) of it stay applied: medications.0003_doselog_scheduled_at_idx; "
            "to return to the state before it: python rollback_manager.py rollback medguard_backup_") in line
    # Once the database is back where it was, nothing is shown any more.
    [backup] = (demo_db.workdir / "backups").glob("*.sql")
    assert demo_db.rollback_manager("rollback", backup.name, "--yes").returncode == 0
    assert "unfinished run" not in demo_db.script("status").stdout


def test_a_signal_during_the_undo_is_ignored_and_the_undo_finishes(demo_db: Database, tmp_path: Path):
    """--commit-each run failing after an irreversible purge: the undo restores the pre-migrate
    backup. A SIGTERM to the whole process group while it restores must not stop it: the kit says
    it ignores the signal, and its pg_restore (in a session of its own) is not hit."""
    before = demo_db.applied()
    marker = tmp_path / "started"
    slow_restore = """
# Fault: the undo's restore is slow; it marks its start, waits 3 s, then restores for real.
for arg in "$@"; do
  if [[ $arg == *__restore_* ]]; then
    : > "$MARKER"
    sleep 3
  fi
done
exec REAL "$@"
"""
    env = fault_bin(tmp_path, "pg_restore", slow_restore) | {
        "MARKER": str(marker), "DJANGO_SETTINGS_MODULE": "tests.fixtures.failing_settings",
        "FAILING_APP_MODE": "irreversible",
    }
    proc = start(demo_db, [str(REPO / "production_migrate.sh"), "migrate", "--commit-each"], env)
    wait_for(marker.exists, "the undo's restore to start")
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    assert ("warning: SIGTERM received during the undo: ignored; the undo keeps the database in a known "
            "state and finishes first") in err.splitlines()
    assert "[migrate-rolled-back]" in err.strip().splitlines()[-1]
    assert demo_db.applied() == before
    assert demo_db.scalar("SELECT count(*) FROM medguard_notifications_notification") == 234
