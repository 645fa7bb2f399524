"""check-migrations' lint on a real PostgreSQL: the lock, the table's size from the catalog and
the safe alternative per statement, the exit code a pipeline gates on, --json, --offline.

The demo's release (tests/support: the seeded demo database), and tests/fixtures/lint_settings:
contrib's contenttypes and auth plus lint_app, whose pending migrations are a plain index on
lint_app_reading and a RunSQL of several statements.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from devtools.pg_server import free_port
from tests.support import REPO, Database, stderr_last

LINT_SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.lint_settings", "DJANGO_PROJECT_DIR": str(REPO)}
BIG_ROWS = 150_000  # about 19 MB with the label: above the default 10 MB threshold


def findings(result: Any, rule: str, migration: str | None = None) -> list[dict[str, Any]]:
    lint = json.loads(result.stdout)["lint"]
    return [f for f in lint["findings"] if f["rule"] == rule and migration in (None, f["migration"])]


def one(result: Any, rule: str, migration: str | None = None) -> dict[str, Any]:
    found = findings(result, rule, migration)
    assert len(found) == 1, result.stdout
    return found[0]


def django(db: Database, *args: str) -> None:
    result = db.run([sys.executable, "-m", "django", *args, "-v0"])
    assert result.returncode == 0, result.stderr


@pytest.fixture
def lint_db(empty_db: Database) -> Database:
    empty_db.env.update(LINT_SETTINGS)
    return empty_db


@pytest.fixture
def big_table(lint_db: Database) -> Database:
    """lint_app at 0001 with lint_app_reading seeded above the threshold; the rest pending."""
    django(lint_db, "migrate", "lint_app", "0001")
    with lint_db.connect() as conn:
        conn.execute("INSERT INTO lint_app_reading (value, label) "
                     "SELECT g, repeat('x', 60) FROM generate_series(1, %s) g", (BIG_ROWS,))
        conn.execute("ANALYZE lint_app_reading")
    return lint_db


def test_the_demo_release_shows_each_change_with_its_lock_size_and_alternative(demo_db: Database):
    text = demo_db.kit("check-migrations")
    assert text.returncode == 1, text.stdout + text.stderr
    assert stderr_last(text).endswith("[lint-unsafe]")
    assert "users.0003_user_timezone: NOT NULL column without a database default on users_user" in text.stderr
    assert "Lint of the plan's SQL (PostgreSQL " in text.stdout
    concurrently = "CREATE INDEX CONCURRENTLY doselog_scheduled_at_idx ON medications_doselog (scheduled_at)"
    assert concurrently in text.stdout

    result = demo_db.kit("check-migrations", "--json")
    assert result.returncode == 1
    index = one(result, "create-index", "medications.0003_doselog_scheduled_at_idx")
    rows = demo_db.scalar("SELECT reltuples::bigint FROM pg_class WHERE relname = 'medications_doselog'")
    assert (index["lock"], index["blocks"], index["work"], index["table"]) == (
        "SHARE", ["writes"], "scan", "medications_doselog")
    assert (index["rows"], index["level"]) == (rows, "warn")  # the seeded dose log is below 10 MB
    assert index["size_bytes"] == demo_db.scalar("SELECT pg_total_relation_size('medications_doselog')")
    fk = one(result, "add-foreign-key", "medguard_notifications.0002_notification_medication")
    assert fk["lock"] == "ACCESS EXCLUSIVE" and fk["table"] == "medguard_notifications_notification"
    assert "medications_medication" in fk["risk"] and "NOT VALID" in fk["alternative"]
    assert "VALIDATE CONSTRAINT" in fk["alternative"]
    not_null = one(result, "not-null-without-default", "users.0003_user_timezone")
    assert (not_null["level"], not_null["breaks"], not_null["table"]) == ("fail", True, "users_user")
    assert not_null["statement"] == 'ALTER TABLE "users_user" ALTER COLUMN "timezone" DROP DEFAULT'
    assert "db_default" in not_null["alternative"]
    purge = one(result, "run-python", "medguard_notifications.0003_purge_expired_notifications")
    assert "purge_expired_notifications" in purge["risk"] and "none (irreversible)" in purge["risk"]
    assert "lower_case_severity" in one(result, "run-python", "security.0002_normalise_severity")["risk"]
    several = one(result, "multi-table-access-exclusive")
    assert "medguard_notifications_notification, users_user" in several["risk"]

    allowed = demo_db.kit("check-migrations", "--allow-unsafe")
    assert allowed.returncode == 0, allowed.stderr
    assert "1 unsafe finding(s) allowed by --allow-unsafe" in allowed.stdout
    plain = demo_db.kit("check-migrations", "--no-lint")
    assert plain.returncode == 0 and "Lint" not in plain.stdout


def test_a_table_above_the_threshold_fails_unless_accepted_or_allowed(big_table: Database):
    result = big_table.kit("check-migrations", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["lint"]["threshold_bytes"] == 10 * 1024 * 1024
    index = one(result, "create-index", "lint_app.0002_reading_value_idx")
    size = big_table.scalar("SELECT pg_total_relation_size('lint_app_reading')")
    assert size > 10 * 1024 * 1024
    assert (index["level"], index["rows"], index["size_bytes"]) == ("fail", BIG_ROWS, size)
    assert "blocks writes while it scans a table above 10.0 MiB" in index["why"]
    assert "lint_app.0002_reading_value_idx: CREATE INDEX without CONCURRENTLY on lint_app_reading" in (
        result.stderr)

    # The RunSQL of several statements: each parsed; its VALIDATE scans under the ADD's lock.
    statements = [s["sql"] for s in report["lint"]["statements"]
                  if s["migration"] == "lint_app.0003_reading_value_positive"]
    assert [s.split()[0:2] for s in statements] == [["SET", "LOCAL"], ["ALTER", "TABLE"], ["ALTER", "TABLE"]]
    assert one(result, "run-sql")["risk"].startswith("3 statement(s)")
    held = one(result, "held-lock", "lint_app.0003_reading_value_positive")
    assert (held["lock"], held["level"]) == ("ACCESS EXCLUSIVE", "fail")

    allowed = big_table.kit("check-migrations", "--allow-unsafe")
    assert allowed.returncode == 0 and "2 unsafe finding(s) allowed" in allowed.stdout
    raised = big_table.kit("check-migrations", "--json", env={"LINT_THRESHOLD": "1GB"})
    assert raised.returncode == 0 and one(raised, "create-index")["level"] == "warn"


def test_the_marker_on_the_migration_class_accepts_its_findings(big_table: Database):
    result = big_table.kit("check-migrations", "--json", env={"LINT_APP_MODE": "accepted"})
    assert result.returncode == 0, result.stderr
    index = one(result, "create-index", "lint_app.0002_reading_value_idx")
    reason = "accepted: built during the nightly maintenance window"
    assert (index["level"], index["why"]) == ("accepted", reason)
    text = big_table.kit("check-migrations", env={"LINT_APP_MODE": "accepted"})
    assert "accepted: built during the nightly maintenance window" in text.stdout


def test_a_third_party_apps_migration_is_linted_and_accepted_in_the_settings(lint_db: Database):
    django(lint_db, "migrate", "contenttypes", "0001")
    result = lint_db.kit("check-migrations", "--json")
    assert result.returncode == 1, result.stderr
    drop = one(result, "drop-column", "contenttypes.0002_remove_content_type_name")
    assert (drop["table"], drop["lock"], drop["level"]) == ("django_content_type", "ACCESS EXCLUSIVE", "fail")
    assert "SeparateDatabaseAndState" in drop["alternative"]
    assert not findings(result, "create-index")  # lint_app's tables are created by the same plan
    accepted = lint_db.kit("check-migrations", "--json", env={"LINT_ACCEPT_CONTENTTYPES": "1"})
    assert accepted.returncode == 0, accepted.stderr
    assert one(accepted, "drop-column")["level"] == "accepted"


def test_offline_needs_no_server_and_says_sizes_are_unknown(demo_db: Database):
    result = demo_db.kit("check-migrations", "--offline", "--json", env={"DB_PORT": str(free_port())})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and stderr_last(result).endswith("[lint-unsafe]")
    report = json.loads(result.stdout)
    assert report["offline"] is True and report["lint"]["server_version_num"] is None
    assert "users.0001_initial" in report["pending"]  # nothing tells what is applied
    index = one(result, "create-index", "medications.0003_doselog_scheduled_at_idx")
    assert (index["size"], index["size_bytes"], index["level"]) == ("unknown", None, "warn")
    assert one(result, "not-null-without-default", "users.0003_user_timezone")["level"] == "fail"
