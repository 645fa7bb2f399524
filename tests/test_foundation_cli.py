"""status, check-migrations and migrate against a real copy of the demo database."""

import stat

from tests.support import Database

PENDING = {
    ("users", "0003_user_timezone"),
    ("medications", "0003_doselog_scheduled_at_idx"),
    ("security", "0002_normalise_severity"),
    ("medguard_notifications", "0002_notification_medication"),
    ("medguard_notifications", "0003_purge_expired_notifications"),
}


def test_seed_demo_brings_the_released_state_at_the_seed_documents_scale(demo_db: Database):
    assert demo_db.scalar("SELECT count(*) FROM medications_medication") == 1247
    assert demo_db.scalar("SELECT count(*) FROM users_user") == 156
    assert demo_db.scalar("SELECT count(*) FROM security_securityevent") == 89
    assert demo_db.scalar("SELECT count(*) FROM medguard_notifications_notification") == 234
    assert not PENDING & demo_db.applied()
    assert ("users", "0002_user_phone_number") in demo_db.applied()


def test_status_prints_connection_counts_and_preflight_without_the_password(demo_db: Database):
    result = demo_db.script("status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Connection: postgres@127.0.0.1:{demo_db.server.port}/{demo_db.name}" in out
    assert "Server: PostgreSQL " in out
    assert "  users: 2 applied, 1 pending" in out
    assert "  medguard_notifications: 1 applied, 2 pending" in out
    assert "Newest backup: none" in out
    assert "✓ database:" in out
    assert "✓ deploy lock: free" in out
    assert "backup space: " in out and " free in " in out
    assert out.rstrip().splitlines()[-1].startswith("OK: 5 migration(s) pending")
    assert demo_db.server.password not in out + result.stderr
    log = demo_db.workdir / "migration.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "[status]" in log.read_text()
    assert demo_db.server.password not in log.read_text()


def test_check_migrations_lists_the_plan_in_order(demo_db: Database):
    result = demo_db.script("check-migrations")
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "Pending migrations (5), in plan order:" in lines
    listed = [line.split(". ", 1)[1] for line in lines if line[:2] in {f"{i}." for i in range(1, 6)}]
    assert {tuple(x.split(".", 1)) for x in listed} == PENDING
    assert listed.index("medications.0003_doselog_scheduled_at_idx") < len(listed)


def test_migrate_applies_every_pending_migration_with_progress_then_nothing(demo_db: Database):
    result = demo_db.script("migrate")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 5
    assert progress[0].startswith("[1/5] ") and " applied in " in progress[0]
    assert demo_db.applied() >= PENDING
    assert demo_db.scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name='users_user' "
        "AND column_name='timezone' AND is_nullable='NO'"
    ) == 1
    again = demo_db.script("check-migrations")
    assert again.returncode == 0
    assert "no pending migrations" in again.stdout


def test_wrong_password_is_named_and_never_echoed(demo_db: Database):
    result = demo_db.script("status", env={"DB_PASSWORD": "not-the-password"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "production_migrate.sh: password authentication failed for user 'postgres' on "
        f"127.0.0.1:{demo_db.server.port}; fix DB_PASSWORD (or DB_USER), then run "
        "production_migrate.sh status [db-auth]"
    )
    assert "not-the-password" not in result.stderr
    assert "not-the-password" not in (demo_db.workdir / "migration.log").read_text()


def test_missing_database_and_stopped_port_get_their_own_messages(demo_db: Database):
    missing = demo_db.script("status", env={"DB_NAME": "no_such_db"})
    assert missing.returncode == 2
    assert "database 'no_such_db' not found on 127.0.0.1:" in missing.stderr
    down = demo_db.script("status", env={"DB_PORT": "1"})
    assert down.returncode == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:1 (server down or wrong port)" in down.stderr
