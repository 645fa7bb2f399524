"""--all-databases on a project with two aliases, each a real database on the suite's server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devtools.pg_server import Server, create_database, drop_database
from tests.support import Database


@pytest.fixture
def two(db: Database, pg: Server, demo_template: str) -> Iterator[tuple[Database, str]]:
    other = f"r_{uuid.uuid4().hex[:10]}"
    create_database(pg, other, template=demo_template)
    db.env.update(DJANGO_SETTINGS_MODULE="tests.fixtures.two_db_settings", DB_NAME_REPORTING=other)
    yield db, other
    drop_database(pg, other)


def test_backup_then_migrate_every_alias(two: tuple[Database, str]):
    db, other = two
    backup = db.script("backup", "--all-databases")
    assert backup.returncode == 0, backup.stderr
    out = backup.stdout.splitlines()
    assert "==> backup --database default" in out and "==> backup --database reporting" in out
    assert "All databases (2): default ok, reporting ok" in out
    dumps = sorted(p.name for p in (db.workdir / "backups").glob("*.json"))
    assert len(dumps) == 2
    migrated = db.script("migrate", "--all-databases", "--no-backup")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.splitlines()[-1] == "OK: migrate succeeded on all 2 database(s)"
    with db.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM django_migrations WHERE app = 'users' "
                            "AND name = '0003_user_timezone'").fetchone()[0] == 1
    assert ("users", "0003_user_timezone") in db.applied()


def test_a_failing_alias_stops_the_run_and_the_summary_says_so(two: tuple[Database, str]):
    db, _other = two
    db.env["DB_NAME_REPORTING"] = "no_such_database_" + uuid.uuid4().hex[:6]
    before = db.applied()
    result = db.script("migrate", "--all-databases", "--no-backup")
    assert result.returncode in (1, 2)
    assert "All databases (2): default ok, reporting FAILED (exit" in result.stdout or \
        "All databases (2): default ok, reporting refused (exit 2)" in result.stdout
    assert "migrate failed on database 'reporting' (1 of 2 failed)" in result.stderr
    assert result.stderr.rstrip().endswith("[all-databases]")
    assert db.applied() != before  # default was migrated before reporting failed: said, not hidden


def test_all_databases_and_database_together_is_a_usage_error(db: Database):
    result = db.script("verify-data", "--all-databases", "--database", "default2")
    assert result.returncode == 2
    assert "--all-databases and --database cannot be used together" in result.stderr
