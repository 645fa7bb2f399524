"""Several databases share one backups/ directory: every command reads the catalog per database.

Real backups (pg_dump) of two real databases in one directory; a rollback's safety backup is
never what emergency-rollback restores.
"""

from __future__ import annotations

import json

from devtools.pg_server import create_database, drop_database
from tests.support import (
    TEMPLATE_DB,
    Database,
    change_after_backup,
    fingerprint,
    make_backup,
    resign,
)


def other_database(db: Database) -> Database:
    other = Database(db.server, f"{db.name}_other", db.workdir, db.env | {"DB_NAME": f"{db.name}_other"})
    create_database(db.server, other.name, template=TEMPLATE_DB)
    return other


def listed(db: Database, *args: str) -> list[str]:
    result = db.rollback_manager("list-backups", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [entry["file"] for entry in json.loads(result.stdout)["backups"]]


def test_retention_status_listing_and_emergency_rollback_are_per_database(db: Database) -> None:
    other = other_database(db)
    try:
        mine_old = make_backup(db, stamp="20260101_000001")
        mine_new = make_backup(db, stamp="20260101_000002")
        theirs = make_backup(other, stamp="20260101_000003")  # the newest file, another database's

        assert listed(db) == [mine_new.name, mine_old.name]
        assert listed(db, "--all") == [theirs.name, mine_new.name, mine_old.name]
        assert f"Newest backup: {mine_new.name} (" in db.script("status").stdout

        # --keep 1 keeps one backup of EACH database: the other database's only backup stays.
        dry = db.rollback_manager("cleanup-backups", "--keep", "1", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"Would remove {mine_old.name} (" in dry.stdout
        assert theirs.name not in dry.stdout
        done = db.rollback_manager("cleanup-backups", "--keep", "1")
        assert done.returncode == 0, done.stderr
        assert not mine_old.exists() and mine_new.exists() and theirs.exists()

        # emergency-rollback of the other database finds its backup, with no warning about ours.
        wanted = fingerprint(other)
        change_after_backup(other)
        result = other.rollback_manager("emergency-rollback", "--yes")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == ""
        assert f"Newest valid backup of '{other.name}': {theirs.name}" in result.stdout
        assert fingerprint(other) == wanted
    finally:
        with db.connect("postgres") as conn:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{other.name}%",)
            ).fetchall():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_database(db.server, other.name)


def test_emergency_rollback_never_restores_a_safety_backup(db: Database) -> None:
    """A safety backup holds the state a rollback replaced (the broken one): never the emergency pick."""
    release = make_backup(db, stamp="20260101_000001")
    wanted = fingerprint(db)
    change_after_backup(db)
    safety = make_backup(db, stamp="20260101_000002")
    resign(safety.with_suffix(".json"), reason="pre-rollback")

    result = db.rollback_manager("emergency-rollback", "--yes")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Newest valid backup of '{db.name}': {release.name}" in result.stdout
    assert fingerprint(db) == wanted
    # Still listed, with its reason, and restorable by name.
    table = db.rollback_manager("list-backups").stdout
    assert any(safety.name in line and "pre-rollback" in line for line in table.splitlines())
