"""migrate: progress, --dry-run, the deploy lock, and undoing a run whose migration fails mid-plan.

The failing plans come from tests/fixtures/failing_app: its 0002 divides by zero after the
demo's own pending migrations (and its 0001) were applied in the same run.
"""

import os
import socket
from pathlib import Path

from migration_tools.core.djangoenv import ConnParams
from migration_tools.pg import deploy_lock
from tests.support import Database, make_orphans

FAILING = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.failing_settings"}
IRREVERSIBLE = FAILING | {"FAILING_APP_MODE": "irreversible"}


def index_exists(db: Database, name: str) -> bool:
    return bool(db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = %s", (name,)))


def table_exists(db: Database, name: str) -> bool:
    return db.scalar("SELECT to_regclass(%s) IS NOT NULL", (name,))


def test_failure_mid_plan_is_undone_by_reverse_migrations(demo_db: Database):
    before = demo_db.applied()
    result = demo_db.script("migrate", "--no-backup", "--commit-each", env=FAILING)
    assert result.returncode == 3, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "[1/7] medications.0003_doselog_scheduled_at_idx applied in " + out[0].rsplit(" ", 1)[1]
    assert "FAILED: failing_app.0002_boom: division by zero" in out
    assert "Undoing this run's 2 migration(s) with their reverse operations ..." in out
    assert out[-1] == "Rolled back (reverse migrations): the applied migrations equal those before the run."
    assert result.stderr.strip().splitlines()[-1] == (
        "production_migrate.sh: migration failing_app.0002_boom failed; the database was rolled back "
        "to its state before this run (reverse migrations); fix the cause, then run production_migrate.sh "
        "migrate again (details in migration.log) [migrate-rolled-back]"
    )
    assert demo_db.applied() == before
    assert not index_exists(demo_db, "doselog_scheduled_at_idx")
    assert not table_exists(demo_db, "failing_app_probe")
    log = (demo_db.workdir / "migration.log").read_text()
    assert "ERROR [migrate]" in log and "failing_app.0002_boom failed: division by zero" in log


def test_no_auto_rollback_leaves_the_run_applied_and_says_how_to_return(demo_db: Database):
    result = demo_db.script("migrate", "--no-backup", "--no-auto-rollback", "--commit-each", env=FAILING)
    assert result.returncode == 1
    assert "migration failing_app.0002_boom failed; 2 migration(s) of this run stay applied" in result.stderr
    # No backup of this run: an older one would discard what was committed since, so none is offered.
    assert ("no backup of this run was taken (--no-backup); see what is applied with production_migrate.sh "
            "status, then finish the release with production_migrate.sh migrate or migrate the apps back "
            "with python manage.py migrate APP MIGRATION [migrate-failed]") in result.stderr
    assert "emergency-rollback" not in result.stderr
    assert ("failing_app", "0001_probe") in demo_db.applied()
    assert index_exists(demo_db, "doselog_scheduled_at_idx")


def test_irreversible_run_without_backup_fails_loudly(demo_db: Database):
    result = demo_db.script("migrate", "--no-backup", "--commit-each", env=IRREVERSIBLE)
    assert result.returncode == 1
    assert ("Reverse operations would not restore the data: "
            "medguard_notifications.0003_purge_expired_notifications "
            "(RunPython(purge_expired_notifications) has no reverse)"
            ) in result.stdout.splitlines()
    assert "UNDO FAILED: there is no pre-migrate backup to restore" in result.stdout.splitlines()
    assert ("FAILED AND UNDOING IT FAILED (there is no pre-migrate backup to restore): the database is "
            "half-migrated; this run applied 3 migration(s): ") in result.stderr
    assert ("; no backup of this run was taken (--no-backup); see what is applied with production_migrate.sh "
            "status, then finish the release with production_migrate.sh migrate or migrate the apps back "
            "with python manage.py migrate APP MIGRATION [rollback-failed]") in result.stderr


def test_dry_run_prints_the_plan_and_sql_and_changes_nothing(demo_db: Database):
    before = demo_db.applied()
    result = demo_db.script("migrate", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Would apply 5 migration(s), in this order:"
    assert 'CREATE INDEX "doselog_scheduled_at_idx" ON "medications_doselog" ("scheduled_at");' in lines
    assert lines[-1] == "OK: dry run: would apply 5 migration(s); nothing was changed"
    assert demo_db.applied() == before
    assert not (demo_db.workdir / "backups").exists()


def test_progress_lines_are_plain_in_a_pipe_and_the_run_is_logged(demo_db: Database):
    result = demo_db.script("migrate", "--no-backup")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout and "\x1b[" not in result.stdout
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert [p.split(" ")[0] for p in progress] == [f"[{i}/5]" for i in range(1, 6)]
    assert result.stdout.splitlines()[-1].startswith("OK: applied 5 migration(s) in ")
    log = (demo_db.workdir / "migration.log").read_text()
    assert "INFO [migrate]" in log and "applied users.0003_user_timezone in " in log
    again = demo_db.script("migrate", "--no-backup")
    assert again.stdout.splitlines()[-1] == "OK: nothing to apply: the database is up to date"


def test_a_second_concurrent_migrate_is_refused_naming_the_holder(demo_db: Database):
    params = ConnParams(demo_db.name, "postgres", "127.0.0.1", demo_db.server.port, demo_db.server.password)
    before = demo_db.applied()
    with deploy_lock.hold(params, "migrate"):
        result = demo_db.script("migrate", "--no-backup")
        status = demo_db.script("status")
    holder = f"migrate host={socket.gethostname()} pid={os.getpid()}"
    assert f"! deploy lock: held by {holder}: a migration or rollback is running" in status.stdout
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"production_migrate.sh: another migration or rollback is running on database '{demo_db.name}' "
        f"(migrate host={socket.gethostname()} pid={os.getpid()}); wait for it to finish (or stop it), "
        "then run the command again [deploy-locked]"
    )
    assert demo_db.applied() == before
    # Released: status says so and the next run goes through.
    assert "✓ deploy lock: free" in demo_db.script("status").stdout
    assert demo_db.script("migrate", "--no-backup").returncode == 0


def test_verify_data_prints_the_seed_documents_lines(demo_db: Database):
    result = demo_db.script("verify-data")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "✓ medications.models.Medication: 1,247 records",
        "✓ users.models.User: 156 records",
        "✓ security.models.SecurityEvent: 89 records",
        "✓ medguard_notifications.models.Notification: 234 records",
        "Data integrity check results:",
    ]
    assert "Orphan medications: 0" in lines
    assert "Potential duplicates: 2" in lines
    assert lines[-1] == "OK: data integrity verified"


def test_verify_data_finds_orphaned_rows_and_fails(demo_db: Database):
    make_orphans(demo_db, 3)
    result = demo_db.script("verify-data")
    assert result.returncode == 1
    assert "Orphan security events: 3" in result.stdout.splitlines()
    assert "✗ security.SecurityEvent.user: 3 row(s) with no parent" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "FAILED: data integrity check failed"
    assert result.stderr == (
        "production_migrate.sh: data integrity check failed: 3 orphaned row(s), 0 invalid index(es); the "
        "lines above (or --json) name the tables; fix the data, then run production_migrate.sh verify-data "
        "[verify-data-failed]\n"
    )
    as_json = demo_db.script("verify-data", "--json")
    assert '"orphan_total": 3' in as_json.stdout


def test_irreversible_run_is_undone_by_restoring_the_pre_migrate_backup(demo_db: Database):
    before = demo_db.applied()
    result = demo_db.script("migrate", "--commit-each", env=IRREVERSIBLE)
    assert result.returncode == 3, result.stdout + result.stderr
    backups = sorted((demo_db.workdir / "backups").glob("medguard_backup_*.sql"))
    assert len(backups) == 1
    out = result.stdout.splitlines()
    assert out[0] == "Taking the pre-migrate backup ..."
    assert f"Nobody else wrote since {backups[0].name}: restoring it ..." in out
    assert out[-1] == (
        f"Rolled back (restoring {backups[0].name}): the applied migrations equal those before the run."
    )
    assert "[migrate-rolled-back]" in result.stderr
    assert demo_db.applied() == before
    # The purged notifications are back and the failed run's table is gone.
    assert demo_db.scalar("SELECT count(*) FROM medguard_notifications_notification") == 234
    assert not table_exists(demo_db, "failing_app_probe")


def test_migrate_takes_a_pre_migrate_backup_first(demo_db: Database):
    result = demo_db.script("migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Taking the pre-migrate backup ..."
    metas = list((demo_db.workdir / "backups").glob("medguard_backup_*.json"))
    assert len(metas) == 1
    assert '"reason": "pre-migrate"' in metas[0].read_text()
    assert '"0003_user_timezone"' not in metas[0].read_text()


def test_full_deploy_runs_every_step_and_prints_the_summary(demo_db: Database):
    result = demo_db.script("full-deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    summary = lines[lines.index("Deployment summary") + 1 :]
    steps = [line.split()[1:3] for line in summary[:6]]
    assert steps == [
        ["pre-flight", "ok"], ["check-migrations", "ok"], ["backup", "ok"], ["migrate", "ok"],
        ["verify-data", "ok"], ["check", "--deploy"],
    ]
    assert summary[5].split()[3] == "ok"
    assert summary[6].startswith(f"Backup: {demo_db.workdir}/backups/medguard_backup_")
    assert lines[-1] == "OK: deployed"
    assert demo_db.script("check-migrations").stdout.splitlines()[-1] == (
        "OK: no pending migrations: the database is up to date"
    )


def test_full_deploy_failing_in_migrate_rolls_back_and_exits_3(demo_db: Database):
    before = demo_db.applied()
    result = demo_db.script("full-deploy", env=FAILING)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    summary = lines[lines.index("Deployment summary") + 1 :]
    assert summary[3].split()[1:3] == ["migrate", "failed"]
    assert summary[4].split()[1:3] == ["verify-data", "skipped"]
    assert demo_db.applied() == before
    assert "full-deploy failed after" not in result.stderr
    assert "the whole plan ran in one transaction: PostgreSQL rolled it back" in result.stderr


# -- issue 9: an undo that restores data exactly, and never discards the application's writes ------


NOOP = FAILING | {"FAILING_APP_MODE": "noop"}


def medication_rows(db: Database) -> list[tuple]:
    return db.query("SELECT * FROM medications_medication ORDER BY id")


def test_by_default_the_plan_runs_in_one_transaction_and_a_failure_leaves_everything_as_it_was(
    demo_db: Database,
):
    before, rows = demo_db.applied(), medication_rows(demo_db)
    notifications = demo_db.scalar("SELECT count(*) FROM medguard_notifications_notification")
    result = demo_db.script("migrate", "--no-backup", env=IRREVERSIBLE)
    assert result.returncode == 3, result.stdout + result.stderr
    assert ("Rolled back (the whole plan ran in one transaction: PostgreSQL rolled it back): "
            "the applied migrations equal those before the run.") in result.stdout.splitlines()
    assert demo_db.applied() == before
    # The irreversible purge and the new column are undone too, row for row.
    assert demo_db.scalar("SELECT count(*) FROM medguard_notifications_notification") == notifications
    assert medication_rows(demo_db) == rows
    assert not table_exists(demo_db, "failing_app_probe")
    assert not index_exists(demo_db, "doselog_scheduled_at_idx")


def test_a_noop_reverse_does_not_count_as_undoing_the_data(demo_db: Database):
    """RunPython(forward, RunPython.noop) changed every name; only the backup gives them back."""
    before, rows = demo_db.applied(), medication_rows(demo_db)
    result = demo_db.script("migrate", "--commit-each", env=NOOP)
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert ("Reverse operations would not restore the data: failing_app.0001_probe_and_uppercase_names "
            "(RunPython(uppercase_names) has a no-op reverse)") in out
    assert "Undoing this run's" not in result.stdout
    assert demo_db.applied() == before
    assert medication_rows(demo_db) == rows  # row for row, names not uppercased


def test_writes_by_the_application_since_the_backup_stop_the_automatic_restore(demo_db: Database):
    """The application keeps inserting while a --commit-each run fails: restoring the backup would
    drop those rows, so the kit leaves the database as it is, names the table, and exits 1."""
    import threading
    import time

    stop = threading.Event()
    inserted: list[int] = []

    def application() -> None:
        with demo_db.connect() as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO security_securityevent (event_type, severity, user_agent, details, "
                             "created_at) SELECT event_type, severity, user_agent, details, now() "
                             "FROM security_securityevent LIMIT 1")
                inserted.append(1)
                time.sleep(0.01)

    events_before = demo_db.scalar("SELECT count(*) FROM security_securityevent")
    writer = threading.Thread(target=application)
    writer.start()
    try:
        result = demo_db.script("migrate", "--commit-each", env=IRREVERSIBLE)
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("production_migrate.sh: migration failing_app.0002_boom failed; 3 migration(s) "
                           "of this run stay applied and the pre-migrate backup was NOT restored, because "
                           "other sessions wrote since the backup: public.security_securityevent (")
    assert line.endswith("; nothing was discarded; to restore it anyway, discarding those writes: "
                         "python rollback_manager.py rollback medguard_backup_"
                         + line.rsplit("medguard_backup_", 1)[1])
    assert "[undo-would-lose-writes]" in line
    # Nothing lost: every row the application committed is there.
    assert demo_db.scalar("SELECT count(*) FROM security_securityevent") == events_before + len(inserted)
    assert ("medguard_notifications", "0003_purge_expired_notifications") in demo_db.applied()


def test_full_deploy_does_not_undo_a_release_for_problems_that_were_there_before_it(demo_db: Database):
    make_orphans(demo_db, 3)
    result = demo_db.script("full-deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    [verify_line] = [line for line in lines if " verify-data " in line]
    assert "orphans 3 before, 3 after; invalid indexes 0 before, 0 after" in verify_line
    assert lines[-1] == "OK: deployed"
    assert ("users", "0003_user_timezone") in demo_db.applied()


def test_a_failed_monitored_run_still_names_its_performance_report(demo_db: Database):
    result = demo_db.script("migrate", "--no-backup", "--monitor", "--interval", "0.2", env=FAILING)
    assert result.returncode == 3, result.stdout + result.stderr
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("Performance report: ")]
    report = line.split(": ", 1)[1]
    assert report.startswith(f"{demo_db.workdir}/migration_monitoring/report_")
    assert '"outcome": "rolled-back"' in Path(report).read_text()
    deploy = demo_db.script("full-deploy", "--monitor", "--interval", "0.2", env=FAILING)
    assert deploy.returncode == 3
    [summary] = [ln for ln in deploy.stdout.splitlines() if ln.startswith("Performance report: ")][-1:]
    assert summary.startswith(f"Performance report: {demo_db.workdir}/migration_monitoring/report_")
