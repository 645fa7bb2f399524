"""zero-downtime on a real PostgreSQL: the rewrites, lock retries, phases, refusals, the probe and
the health check. Faults are real: another session holding a lock, a backend cancelled by
pg_cancel_backend, an HTTP server that turns unhealthy once the schema changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import EXAMPLE, Database, execute, make_orphans, temp_files_of, wait_for

ZD = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.zd_settings"}
DEMO_PRE = ["medguard_notifications.0002_notification_medication",
            "medguard_notifications.0003_purge_expired_notifications",
            "medications.0003_doselog_scheduled_at_idx", "security.0002_normalise_severity"]


def column_exists(db: Database, table: str, column: str) -> bool:
    return bool(db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = %s "
                          "AND column_name = %s", (table, column)))


def index_valid(db: Database) -> bool:
    return db.scalar("SELECT indisvalid FROM pg_index "
                     "WHERE indexrelid = 'doselog_scheduled_at_idx'::regclass")


def report_of(db: Database) -> dict[str, Any]:
    reports = sorted((db.workdir / "migration_monitoring").glob("report_*.json"))
    assert reports, "no performance report was written"
    return json.loads(reports[-1].read_text())


@pytest.fixture
def holder(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """Another session of the application, for holding locks in the test's own transaction."""
    conn = db.connect()
    conn.autocommit = False
    yield conn
    conn.rollback()
    conn.close()


def run_in_background(db: Database, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([str(Path(__file__).parent.parent / "production_migrate.sh"), *args],
                            env=db.env | (env or {}), cwd=db.workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def test_the_rewrites_replace_the_blocking_statements(db: Database):
    """The SQL Django's own editor would run against what the zero-downtime editor runs, same plan."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connections\n"
        "from migration_tools.deploy import plan\n"
        "from migration_tools.zerodowntime.engine import zero_downtime_connection, retries_for\n"
        "from migration_tools.zerodowntime.settings import ZeroDowntimeSettings\n"
        "def sql():\n"
        "    r = plan.prepare('default')\n"
        "    return [s for m in r.pending for s in r.executor.loader.collect_sql([(m, False)])]\n"
        "plain = sql()\n"
        "c = ZeroDowntimeSettings(lock_timeout=1.5)\n"
        "with zero_downtime_connection('default', c, retries_for(c)):\n"
        "    safe = sql()\n"
        "import json; print(json.dumps({'plain': plain, 'safe': safe}))\n"
    )
    result = db.run([sys.executable, "-c", code], cwd=EXAMPLE)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    plain, safe = "\n".join(got["plain"]), "\n".join(got["safe"])
    assert 'CREATE INDEX "doselog_scheduled_at_idx" ON "medications_doselog"' in plain
    assert 'CREATE INDEX CONCURRENTLY "doselog_scheduled_at_idx" ON "medications_doselog"' in safe
    fk = '"medguard_notificatio_medication_id_0ec6e8af_fk_medicatio"'
    assert any(fk in s and "REFERENCES" in s and "NOT VALID" not in s for s in got["plain"])
    assert any(fk in s and s.endswith("NOT VALID;") for s in got["safe"])
    assert any(s.endswith(f"VALIDATE CONSTRAINT {fk};") for s in got["safe"])
    assert "SET lock_timeout TO '1500ms';" in got["safe"]  # every blocking statement under the short wait


def test_phases_pre_then_post(db: Database):
    before = db.applied()
    refused = db.script("zero-downtime", "--phase", "post", "--no-backup")
    assert refused.returncode == 2
    assert "--phase post: 4 pending migration(s) belong to the pre phase" in refused.stderr
    assert "[phase-order]" in refused.stderr
    assert db.applied() == before

    pre = db.script("zero-downtime", "--phase", "pre")
    assert pre.returncode == 0, pre.stderr
    lines = pre.stdout.splitlines()
    applied = [line.split(" applied in ")[0].split("] ")[1] for line in lines if " applied in " in line]
    assert applied == DEMO_PRE
    assert "Left for --phase post (1): users.0003_user_timezone" in lines
    assert ("Roll out the new code everywhere, then run: production_migrate.sh zero-downtime --phase post"
            in lines)
    assert not column_exists(db, "users_user", "timezone")
    assert index_valid(db)
    assert db.scalar("SELECT bool_and(convalidated) FROM pg_constraint WHERE conrelid = "
                     "'medguard_notifications_notification'::regclass AND contype = 'f'")

    post = db.script("zero-downtime", "--phase", "post")
    assert post.returncode == 0, post.stderr
    assert "[1/1] users.0003_user_timezone applied in" in post.stdout
    assert column_exists(db, "users_user", "timezone")
    assert post.stdout.splitlines()[-1].startswith("OK: applied 1 migration(s) in ")
    report = report_of(db)
    assert report["lock_retries"] == 0 and report["probe_failures"] == 0
    assert set(report["stalls_by_table"]) == {"users_user"}
    assert report["max_write_stall_ms"] is not None


def test_breaking_statement_refused_without_phase(db: Database):
    before = db.applied()
    result = db.script("zero-downtime", "--no-backup")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "production_migrate.sh: 1 statement(s) of the plan would break the running code or block the "
        "application; first: users.0003_user_timezone: ")
    assert "instead: " in result.stderr and result.stderr.rstrip().endswith("[lint-unsafe]")
    assert db.applied() == before


def test_a_column_drop_is_refused_with_its_recipe_and_waits_for_the_post_phase(db: Database):
    env = db.env | ZD
    for args in (["migrate"], ["migrate", "zd_app", "0001"]):  # all but the drop is released
        done = db.run([sys.executable, str(EXAMPLE / "manage.py"), *args], env=env)
        assert done.returncode == 0, done.stderr
    before = db.applied()
    refused = db.script("zero-downtime", "--no-backup", env=ZD)
    assert refused.returncode == 1
    assert "zd_app.0002_remove_item_legacy" in refused.stderr and "breaks" in refused.stderr
    assert "instead: " in refused.stderr and refused.stderr.rstrip().endswith("[lint-unsafe]")
    assert db.applied() == before and column_exists(db, "zd_app_item", "legacy")

    pre = db.script("zero-downtime", "--no-backup", "--phase", "pre", env=ZD)
    assert pre.returncode == 0, pre.stderr
    assert "Left for --phase post (1): zd_app.0002_remove_item_legacy" in pre.stdout
    assert pre.stdout.splitlines()[-1] == "OK: nothing to apply in the pre phase"
    post = db.script("zero-downtime", "--no-backup", "--phase", "post", env=ZD)
    assert post.returncode == 0, post.stderr
    assert not column_exists(db, "zd_app_item", "legacy")


def test_lock_held_by_another_session_is_waited_for_in_short_tries(db: Database, holder):
    """A long read holds ACCESS SHARE on users_user until the ALTER has timed out twice: the ALTER
    waits 0.4 s at a time, and the application queues behind it no longer than that."""
    assert db.script("zero-downtime", "--phase", "pre", "--no-backup", "--no-monitor").returncode == 0
    holder.execute("SELECT count(*) FROM users_user")  # the transaction now holds ACCESS SHARE
    log = db.workdir / "migration.log"
    proc = run_in_background(db, "zero-downtime", "--phase", "post", "--no-backup", "--lock-timeout", "0.4",
                             "--lock-tries", "20")
    wait_for(lambda: "lock wait timed out (try 2 of 20)" in log.read_text(), "two timed-out lock waits")
    holder.rollback()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert column_exists(db, "users_user", "timezone")
    report = report_of(db)
    assert report["lock_retries"] >= 2
    assert all(event["waited_ms"] >= 350 for event in report["lock_retry_events"])
    # The probe queued behind each waiting ALTER for at most its lock_timeout, never behind the long read.
    assert 0 < report["max_read_stall_ms"] < 400 + 600
    assert "lock wait timed out (try 1 of 20), retrying" in log.read_text()
    assert f"{report['lock_retries']} lock wait(s) timed out and retried" in out


def test_gives_up_after_the_last_try_and_leaves_nothing_half_applied(db: Database, holder):
    assert db.script("zero-downtime", "--phase", "pre", "--no-backup", "--no-monitor").returncode == 0
    before = db.applied()
    holder.execute("LOCK TABLE users_user IN ACCESS SHARE MODE")
    result = db.script("zero-downtime", "--phase", "post", "--lock-timeout", "0.2", "--lock-tries", "2",
                       "--no-monitor")
    holder.rollback()
    assert result.returncode == 3, result.stderr
    assert ("migration users.0003_user_timezone could not take its lock within 0.2s in 2 tries "
            "(another session held it); the database was rolled back to its state before this run"
            ) in result.stderr
    assert "Checked: the schema equals the schema before the run." in result.stdout
    assert db.applied() == before
    assert not column_exists(db, "users_user", "timezone")


def test_a_cancelled_concurrent_build_leaves_no_invalid_index(db: Database, holder):
    """An open write transaction on the table makes CREATE INDEX CONCURRENTLY wait; the test cancels
    the build (pg_cancel_backend), leaving an INVALID index; the undo drops it; a second run builds it."""
    released = db.run([sys.executable, str(EXAMPLE / "manage.py"), "migrate", "medguard_notifications"])
    assert released.returncode == 0, released.stderr  # the index build is the run's first migration
    holder.execute("LOCK TABLE medications_doselog IN ROW EXCLUSIVE MODE")
    proc = run_in_background(db, "zero-downtime", "--phase", "pre", "--no-backup", "--no-monitor")
    with db.connect() as conn:
        pid = wait_for(lambda: conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%' "
            "AND wait_event_type IS NOT NULL").fetchone(), "the concurrent build waiting", timeout=60)[0]
        assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0] == 1
        conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
    holder.rollback()  # the long transaction ends; dropping the invalid index concurrently waits for it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "canceling statement due to user request" in out
    assert "Checked: the schema equals the schema before the run." in out
    assert db.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
    again = db.script("zero-downtime", "--phase", "pre", "--no-backup", "--no-monitor")
    assert again.returncode == 0, again.stderr
    assert index_valid(db)


class _Health(BaseHTTPRequestHandler):
    """200 while users_user has no timezone column (the released code's schema), 503 after."""

    db: Database

    def do_GET(self) -> None:
        status = 503 if column_exists(self.db, "users_user", "timezone") else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"down")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_url(db: Database) -> Iterator[str]:
    handler = type("Handler", (_Health,), {"db": db})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health/"
    server.shutdown()
    server.server_close()


def test_health_check_throughout_and_after(db: Database, health_url: str):
    env = {"MEDGUARD_HEALTH_URL": health_url}
    pre = db.script("zero-downtime", "--phase", "pre", "--no-backup", env=env)
    assert pre.returncode == 0, pre.stderr
    health = report_of(db)["health"]
    assert health["url"] == health_url and health["checks"] >= 2 and health["failures"] == 0
    assert health["after_migration"] == "ok"

    before = db.applied()
    post = db.script("zero-downtime", "--phase", "post", env=env)  # the new column makes it answer 503
    assert post.returncode == 3, post.stderr
    assert "the application's health check failed after migrating" in post.stderr
    assert "HTTP 503, expected 200" in post.stderr and "[zero-downtime-rolled-back]" in post.stderr
    assert db.applied() == before and not column_exists(db, "users_user", "timezone")


def test_unreachable_health_url_refuses_before_anything_changes(db: Database):
    before = db.applied()
    result = db.script("zero-downtime", "--phase", "pre", env={"MEDGUARD_HEALTH_URL": "http://127.0.0.1:9/health/"})
    assert result.returncode == 1
    assert "the application's health check fails before migrating: http://127.0.0.1:9/health/ answered " \
           "unreachable: " in result.stderr
    assert "[health-check-before]" in result.stderr
    assert db.applied() == before and not (db.workdir / "backups").exists()


def test_the_probe_measures_a_held_lock(db: Database, holder):
    from migration_tools.core.djangoenv import ConnParams
    from migration_tools.deploy.probe import AvailabilityProbe

    params = ConnParams(host="127.0.0.1", port=str(db.server.port), user="postgres",
                        password=db.server.password, dbname=db.name)
    with AvailabilityProbe(params, ["medications_medication", "users_user"], interval=0.05) as probe:
        time.sleep(0.3)
        holder.execute("LOCK TABLE medications_medication IN ACCESS EXCLUSIVE MODE")
        time.sleep(1.0)
        holder.rollback()
        time.sleep(0.3)
    section = probe.section()
    held = section["stalls_by_table"]["medications_medication"]
    assert 800 <= held["max_read_stall_ms"] <= 1500 and 800 <= held["max_write_stall_ms"] <= 1500
    assert section["stalls_by_table"]["users_user"]["max_read_stall_ms"] < 500
    assert held["probes"] >= 5 and held["probe_failures"] == 0


def test_enhanced_profile_monitors_by_default(db: Database):
    result = db.run([str(Path(__file__).parent.parent / "production_migrate_enhanced.sh"), "zero-downtime",
                     "--phase", "pre", "--interval", "0.2"])
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("[") and "] CPU: " in line for line in result.stdout.splitlines())
    assert "Performance report: " in result.stdout
    report = report_of(db)
    assert [m["migration"] for m in report["migrations"]] == DEMO_PRE
    assert (db.workdir / "migration_monitoring" / "performance.log").exists()


def test_ctrl_c_during_a_waiting_build_is_undone(db: Database, holder):
    """SIGINT to the command's process group (Ctrl-C on a terminal) while the index build waits."""
    released = db.run([sys.executable, str(EXAMPLE / "manage.py"), "migrate", "medguard_notifications"])
    assert released.returncode == 0, released.stderr
    before = db.applied()
    holder.execute("LOCK TABLE medications_doselog IN ROW EXCLUSIVE MODE")
    proc = subprocess.Popen([str(Path(__file__).parent.parent / "production_migrate.sh"), "zero-downtime",
                             "--phase", "pre", "--no-backup", "--no-monitor"], env=db.env, cwd=db.workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    waiting = ("SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%' "
               "AND wait_event_type IS NOT NULL")
    with db.connect() as conn:
        wait_for(lambda: conn.execute(waiting).fetchone(), "the concurrent build waiting", timeout=60)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    holder.rollback()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "interrupted by SIGINT during migration medications.0003_doselog_scheduled_at_idx" in err
    assert "Checked: the schema equals the schema before the run." in out
    assert db.applied() == before
    assert db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'doselog_scheduled_at_idx'") == 0


def test_the_probe_never_holds_its_lock_while_the_kit_waits_for_the_cpu(db: Database):
    """The fault: the kit's process busy (a thread that never gives up the CPU for long, as Django's
    migration work does). A probe holding its lock across round trips sits "idle in transaction"
    while its thread waits to run again, and a migration's ALTER TABLE would wait behind it."""
    from migration_tools.core.djangoenv import ConnParams
    from migration_tools.deploy.probe import AvailabilityProbe

    params = ConnParams(host="127.0.0.1", port=str(db.server.port), user="postgres",
                        password=db.server.password, dbname=db.name)
    done = threading.Event()

    def hog() -> None:
        while not done.is_set():
            sum(range(10_000))

    states: list[str] = []
    worker = threading.Thread(target=hog, daemon=True)
    worker.start()
    try:
        probe = AvailabilityProbe(params, ["medications_medication"], interval=0.01)
        with db.connect() as conn, probe:
            ending = time.monotonic() + 2.0
            while time.monotonic() < ending:
                states += [row[0] for row in conn.execute(
                    "SELECT state FROM pg_stat_activity WHERE application_name LIKE '%%:probe'").fetchall()]
    finally:
        done.set()
    assert probe.section()["stalls_by_table"]["medications_medication"]["probes"] >= 20
    assert len(states) >= 20 and set(states) <= {"idle", "active"}, sorted(set(states))


def test_the_probe_says_what_a_role_may_not_lock(db: Database, make_role):
    """A role that may read but not write the table: its write stalls are not measured, and said so."""
    from migration_tools.core.djangoenv import ConnParams
    from migration_tools.deploy.probe import AvailabilityProbe

    role = make_role("reader")
    with db.connect() as conn:
        conn.execute(f"GRANT SELECT ON medications_medication TO {role.name}")
    params = ConnParams(host="127.0.0.1", port=str(db.server.port), user=role.name, password=role.password,
                        dbname=db.name)
    with AvailabilityProbe(params, ["medications_medication"], interval=0.05) as probe:
        time.sleep(0.5)
    table = probe.section()["stalls_by_table"]["medications_medication"]
    assert table["not_measured"] == ["write"] and table["max_write_stall_ms"] is None
    assert table["max_read_stall_ms"] is not None and table["probe_failures"] == 0


def test_migrate_monitor_reports_the_probe_too(db: Database):
    result = db.script("migrate", "--monitor", "--no-backup", "--interval", "0.2")
    assert result.returncode == 0, result.stderr
    report = report_of(db)
    assert {"medications_doselog", "medguard_notifications_notification", "users_user"} <= set(
        report["stalls_by_table"])
    assert report["max_write_stall_ms"] is not None and report["probe_failures"] == 0


def test_full_deploy_checks_the_health_url_after_migrating(db: Database, health_url: str):
    before = db.applied()
    result = db.script("full-deploy", "--monitor", env={"MEDGUARD_HEALTH_URL": health_url})
    assert result.returncode == 3, result.stderr  # the new column makes the application answer 503
    assert "the application's health check failed after migrating" in result.stderr
    assert "HTTP 503, expected 200" in result.stderr
    assert db.applied() == before and not column_exists(db, "users_user", "timezone")
    assert report_of(db)["health"]["after_migration"] == "failed: HTTP 503, expected 200"


ORPHANS = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.failing_settings", "FAILING_APP_MODE": "orphans"}


def test_problems_there_before_the_release_are_reported_not_undone_for(db: Database):
    """The baseline before migrating: 3 orphans a bulk load left are still 3 after, so no undo."""
    make_orphans(db, 3)
    result = db.script("zero-downtime", "--phase", "pre", "--no-backup")
    assert result.returncode == 0, result.stdout + result.stderr
    assert report_of(db)["verify_data"]["orphan_total"] == 3
    assert all(tuple(m.split(".")) in db.applied() for m in DEMO_PRE)


def test_a_release_that_brings_orphans_is_undone_and_no_verify_lets_it_through(db: Database):
    """A data fix with a bug (failing_app, mode orphans) points a row at a user that does not exist."""
    first = db.script("zero-downtime", "--phase", "pre", "--no-backup")  # the demo's part of the release
    assert first.returncode == 0, first.stdout + first.stderr
    before = db.applied()
    result = db.script("zero-downtime", "--phase", "pre", "--no-backup", env=ORPHANS)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "failing_app.Probe.user: 1 new orphaned row(s)" in result.stderr
    assert db.applied() == before
    assert not db.scalar("SELECT to_regclass('failing_app_probe') IS NOT NULL")

    skipped = db.script("zero-downtime", "--phase", "pre", "--no-backup", "--no-verify", env=ORPHANS)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "verify-data not run (--no-verify): new data problems were not looked for" in skipped.stderr
    assert db.scalar("SELECT count(*) FROM failing_app_probe WHERE user_id = 999999") == 1
    assert report_of(db)["verify_data"] == {"skipped": "--no-verify"}


def test_an_index_build_gets_the_memory_its_validation_needs(db: Database):
    """The fault: maintenance_work_mem too small for the build (1 MB for 60,000 rows stands for the
    default 64 MB at millions). CREATE INDEX CONCURRENTLY then writes its sorts to disk, its validation's
    batches while it holds an index page the application's writes may wait for (290-460 ms at 8 million
    rows, README's limitations). The same statement as the kit's, run by hand, writes temporary
    files; zero-downtime gives the statement the memory for the table's rows and writes none."""
    execute(db, "INSERT INTO medications_doselog (prescription_id, scheduled_at, status, source, notes, "
                "created_at) SELECT (SELECT min(id) FROM medications_prescription), "
                "now() - g * interval '1 minute', 'taken', 'app', '', now() FROM generate_series(1, 60000) g")
    execute(db, "ANALYZE medications_doselog")
    execute(db, f'ALTER DATABASE "{db.name}" SET maintenance_work_mem = "1MB"')
    by_hand = "CREATE INDEX CONCURRENTLY by_hand ON medications_doselog (scheduled_at)"
    _, hand_files = temp_files_of(db, lambda: execute(db, by_hand))
    execute(db, "DROP INDEX by_hand")
    result, kit_files = temp_files_of(db, lambda: db.script("zero-downtime", "--phase", "pre", "--no-backup",
                                                            "--no-verify", "--no-monitor"))
    assert result.returncode == 0, result.stderr
    assert index_valid(db)
    assert (hand_files > 0, kit_files) == (True, 0)
    log = (db.workdir / "migration.log").read_text()
    assert 'index build on "medications_doselog"' in log
    assert "maintenance_work_mem 17 MB for this statement (was 1 MB), 0 parallel worker(s) at most" in log
