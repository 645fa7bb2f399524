"""`python rollback_manager.py rollback FILENAME`: real PostgreSQL, real pg_dump/pg_restore.

Faults are real too: corrupted and truncated archives, edited metadata, a backup of another
database, paths outside the backup directory, no terminal, a pg_restore that dies halfway
(a wrapper first on PATH), and a second rollback while the first one holds the deploy lock.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.pg_server import Server, create_database, drop_database
from migration_tools.backup import metadata
from tests.support import (
    REPO,
    TEMPLATE_DB,
    Database,
    MakeRole,
    base_env,
    change_after_backup,
    fault_bin,
    fingerprint,
    flip_bytes,
    make_backup,
    rollback_log_lines,
    run_as,
    side_databases,
    wait_for,
)

PROG = "rollback_manager.py"
PREFIX = "medguard"


# -- helpers -----------------------------------------------------------------------------




















# -- the happy path ----------------------------------------------------------------------


def test_rollback_swaps_in_the_backup_and_keeps_the_old_database(db: Database) -> None:
    dump = make_backup(db)
    before = fingerprint(db)
    meta = json.loads(metadata.meta_path_for(dump).read_text())
    change_after_backup(db)
    changed = fingerprint(db)

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert fingerprint(db) == before  # row for row, and the table created after the backup is gone
    assert db.scalar("SELECT to_regclass('after_backup')") is None
    assert sorted(db.applied()) == sorted(tuple(p) for p in meta["applied_migrations"])
    [kept] = [n for n in side_databases(db) if "__pre_rollback_" in n]
    assert fingerprint(db, kept) == changed  # nothing destroyed: the replaced state is kept
    out = result.stdout.splitlines()
    rows = sum(meta["row_counts"].values())
    assert f"✓ Restored {len(meta['row_counts'])} tables, {rows:,} rows, " \
           f"{len(meta['applied_migrations'])} applied migrations: they match the backup's metadata" in out
    assert f"Kept the replaced database as '{kept}'" in out
    assert out[-1].startswith(f"OK: database '{db.name}' rolled back to {dump.name} in ")
    # the restored database has planner statistics (ANALYZE ran)
    assert db.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'medications_medication'") > 0
    log = "\n".join(rollback_log_lines(db))
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    assert f"INFO [rollback] user={user} rollback {dump.name} requested" in log
    assert f"INFO [rollback] user={user} rollback {dump.name} succeeded" in log
    assert db.server.password not in log

    # the printed undo command brings the replaced state back
    [undo] = [ln.split(": ", 1)[1] for ln in out if ln.startswith("To undo this rollback: ")]
    assert undo.startswith("psql ")
    env = db.env | {"PGPASSWORD": db.server.password}
    done = subprocess.run(["bash", "-c", undo], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert fingerprint(db) == changed


def test_a_path_inside_the_backup_directory_is_accepted(db: Database) -> None:
    dump = make_backup(db)
    result = db.rollback_manager("rollback", f"backups/{dump.name}", "--yes")
    assert result.returncode == 0, result.stderr
    result = db.rollback_manager("rollback", str(dump), "--yes")
    assert result.returncode == 0, result.stderr


def test_a_restore_copy_left_by_a_killed_rollback_is_dropped_by_the_next(db: Database) -> None:
    dump = make_backup(db)
    stale = f"{db.name}__restore_20200101_000000"
    create_database(db.server, stale)  # what a rollback killed mid-restore leaves behind
    result = db.rollback_manager("rollback", dump.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert f"Dropping '{stale}', left behind by an interrupted rollback" in result.stdout.splitlines()
    assert stale not in side_databases(db)
    assert [name for name in side_databases(db) if "__restore_" in name] == []


def test_rolling_back_a_migration_lets_it_run_again(db: Database) -> None:
    taken = db.script("backup")  # the kit's own backup command this time
    assert taken.returncode == 0, taken.stderr
    [dump] = sorted((db.workdir / "backups").glob("*.sql"))
    applied_before = db.applied()
    migrated = db.script("migrate", "--no-backup")
    assert migrated.returncode == 0, migrated.stderr
    assert db.applied() > applied_before  # the demo has pending migrations

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 0, result.stderr
    assert db.applied() == applied_before
    again = db.script("migrate", "--no-backup")
    assert again.returncode == 0, again.stderr


def test_sessions_on_the_target_are_ended_at_the_swap(db: Database) -> None:
    dump = make_backup(db)
    app = db.connect()
    app.execute("SELECT 1")
    try:
        result = db.rollback_manager("rollback", dump.name, "--yes")
        assert result.returncode == 0, result.stderr
        assert "Ended 1 session(s) connected to the old database" in result.stdout.splitlines()
        with pytest.raises(Exception):  # noqa: B017 - the server ended it: any driver error
            app.execute("SELECT 1")
    finally:
        app.close()


def test_dry_run_validates_and_changes_nothing(db: Database) -> None:
    dump = make_backup(db)
    change_after_backup(db)
    before = fingerprint(db)
    result = db.rollback_manager("rollback", dump.name, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"OK: dry run: backup {dump.name} is valid; nothing was changed"
    assert fingerprint(db) == before
    assert side_databases(db) == []


# -- refusals: exit 2, one line, nothing changed -------------------------------------------


def refused(db: Database, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    before = fingerprint(db)
    result = db.rollback_manager("rollback", *args, **kwargs)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert fingerprint(db) == before
    assert side_databases(db) == []
    return result


LIST_HINT = "run python rollback_manager.py list-backups to see the valid backups"


def test_filename_with_dotdot_is_refused(db: Database) -> None:
    dump = make_backup(db)
    result = refused(db, f"../work dir/backups/{dump.name}", "--yes")
    assert result.stderr == (
        f"{PROG}: '../work dir/backups/{dump.name}' contains '..'; give a backup's file name from "
        f"{db.workdir / 'backups'}; {LIST_HINT} [backup-path]\n"
    )


def test_file_outside_the_backup_directory_is_refused(db: Database) -> None:
    dump = make_backup(db)
    outside = db.workdir / dump.name
    shutil.copy(dump, outside)
    shutil.copy(metadata.meta_path_for(dump), metadata.meta_path_for(outside))
    result = refused(db, str(outside), "--yes")
    assert result.stderr == (
        f"{PROG}: '{outside}' is not inside the backup directory {db.workdir / 'backups'}; "
        f"{LIST_HINT} [backup-path]\n"
    )


def test_missing_backup_is_refused(db: Database) -> None:
    make_backup(db)
    result = refused(db, "medguard_backup_20000101_000000.sql", "--yes")
    assert result.stderr == (
        f"{PROG}: backup 'medguard_backup_20000101_000000.sql' not found in {db.workdir / 'backups'}; "
        f"{LIST_HINT} [backup-missing]\n"
    )


@pytest.mark.parametrize(
    "damage",
    ["flipped bytes", "truncated", "metadata missing", "metadata edited"],
)
def test_a_backup_failing_validation_is_refused(db: Database, damage: str) -> None:
    dump = make_backup(db)
    meta_path = metadata.meta_path_for(dump)
    if damage == "flipped bytes":
        flip_bytes(dump)
    elif damage == "truncated":
        dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    elif damage == "metadata missing":
        meta_path.unlink()
    else:
        raw = json.loads(meta_path.read_text())
        raw["row_counts"]["public.users_user"] += 1
        raw["sha256"] = "0" * 64
        meta_path.write_text(json.dumps(raw))
    change_after_backup(db)
    result = refused(db, dump.name, "--yes")
    assert result.stderr.startswith(f"{PROG}: backup {dump.name} failed validation: ")
    assert result.stderr.endswith(
        "; nothing was changed; pick another backup (python rollback_manager.py list-backups) "
        "or run emergency-rollback [backup-invalid]\n"
    )
    assert "ERROR [rollback] user=" in "\n".join(rollback_log_lines(db))


def test_a_backup_of_another_database_is_refused(db: Database) -> None:
    # a real backup of another database (a staging copy), put in this project's backup directory
    other = Database(db.server, f"{db.name}__staging", db.workdir, db.env)
    create_database(db.server, other.name, template=TEMPLATE_DB)
    try:
        dump = make_backup(other)
    finally:
        drop_database(db.server, other.name)
    result = refused(db, dump.name, "--yes")
    assert result.stderr == (
        f"{PROG}: refusing {dump.name}: it is a backup of database '{other.name}', not '{db.name}'; "
        "nothing was changed; pick a backup of this database (python rollback_manager.py list-backups) "
        "or fix DB_NAME [backup-other-database]\n"
    )


@pytest.mark.parametrize("seconds", ["nan", "inf", "0", "-1"])
def test_a_lock_timeout_that_is_not_a_number_of_seconds_is_refused(db: Database, seconds: str) -> None:
    dump = make_backup(db)
    result = db.rollback_manager("rollback", dump.name, "--yes", "--lock-timeout", seconds)
    assert result.returncode == 2, result.stdout
    first = result.stderr.splitlines()[0]  # the kit's usage line (its wording is cli.usage_errors')
    assert first.startswith(f"{PROG}: ") and "--lock-timeout" in first, result.stderr
    assert f"{float(seconds)} is not a number of seconds from 0.05 to 600" in first, result.stderr
    assert side_databases(db) == []


def test_no_terminal_and_no_yes_is_refused(db: Database) -> None:
    dump = make_backup(db)
    result = refused(db, dump.name)  # the fixture runs commands with stdin from /dev/null
    assert result.stderr == (
        f"{PROG}: refusing to roll back without confirmation: stdin is not a terminal and --yes was "
        "not given; nothing was changed; run it on a terminal to confirm, or pass --yes [confirm-needed]\n"
    )


def test_on_a_terminal_it_asks_and_no_means_no(db: Database) -> None:
    import pty

    dump = make_backup(db)
    before = fingerprint(db)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "rollback_manager.py"), "rollback", dump.name],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=db.env, cwd=db.workdir,
        text=True,
    )
    os.close(follower)
    os.write(leader, b"n\n")
    out, err = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 2
    assert f"Roll back database '{db.name}' to {dump.name}? [y/N]: " in out
    assert err == f"{PROG}: rollback not confirmed; nothing was changed [not-confirmed]\n"
    assert fingerprint(db) == before


# -- faults while restoring -------------------------------------------------------------------

HALFWAY = """
# Fault: the restore into the new database dies halfway. The real pg_restore loads the schema
# and the data (pre-data and data sections), then this process is killed with SIGKILL before
# the indexes and constraints are built. Other calls (validation) run the real pg_restore.
for arg in "$@"; do
  if [[ $arg == --dbname=* ]]; then
    REAL --section=pre-data --section=data "$@" || :  # fails at once where the server is older than it
    kill -9 $$
  fi
done
exec REAL "$@"
"""


def test_restore_dying_halfway_leaves_the_database_exactly_as_before(db: Database, tmp_path: Path) -> None:
    dump = make_backup(db)
    change_after_backup(db)
    before = fingerprint(db)
    env = fault_bin(tmp_path, "pg_restore", HALFWAY)

    result = db.rollback_manager("rollback", dump.name, "--yes", env=env)

    assert result.returncode == 1, result.stdout
    new_db = result.stdout.split("Creating database '", 1)[1].split("'", 1)[0]
    assert result.stderr == (
        f"{PROG}: pg_restore was killed by signal SIGKILL while restoring into '{new_db}'; "
        f"database '{db.name}' is unchanged (the new database was dropped); "
        "fix the cause, then run the rollback again [restore-failed]\n"
    )
    assert fingerprint(db) == before
    assert side_databases(db) == []
    log = "\n".join(rollback_log_lines(db))
    assert "failed: pg_restore was killed by signal SIGKILL while restoring into" in log


SERVER_STOPS = """
# Fault: the server stops while pg_restore fills the new database. The real pg_restore restores the
# schema (pre-data section), then the postmaster gets SIGINT (a fast shutdown, as pg_ctl stop -m fast
# sends) and is gone before the rest of the restore runs, which fails. Other calls run the real pg_restore.
for arg in "$@"; do
  if [[ $arg == --dbname=* ]]; then
    REAL --section=pre-data "$@" || :
    postmaster=$(head -1 "$STOP_DATADIR/postmaster.pid")
    kill -INT "$postmaster"
    while kill -0 "$postmaster" 2>/dev/null; do sleep 0.05; done
    exec REAL "$@"
  fi
done
exec REAL "$@"
"""


def test_a_server_stopped_during_the_restore_is_told_truly_and_the_copy_dropped_next_time(
    db: Database, tmp_path: Path
) -> None:
    """A server of its own: the suite's server must keep running for the other tests."""
    server = Server(tmp_path / "own server", fast=True)
    server.start()
    try:
        live = Database(server, "live", db.workdir, base_env(server, "live", db.workdir))
        create_database(server, live.name)
        with live.connect() as conn:
            conn.execute("CREATE TABLE dose (id int PRIMARY KEY, taken timestamptz)")
            conn.execute("INSERT INTO dose SELECT i, now() FROM generate_series(1, 500) i")
            conn.execute("CREATE TABLE django_migrations (id serial PRIMARY KEY, app text, name text, "
                          "applied timestamptz)")
            conn.execute("INSERT INTO django_migrations (app, name, applied) "
                         "VALUES ('dose', '0001_initial', now())")
        dump = make_backup(live)
        with live.connect() as conn:
            conn.execute("DELETE FROM dose WHERE id > 400")
        before = fingerprint(live)
        env = fault_bin(tmp_path, "pg_restore", SERVER_STOPS) | {"STOP_DATADIR": str(server.datadir)}

        result = live.rollback_manager("rollback", dump.name, "--yes", env=env)

        assert result.returncode == 1, result.stdout
        new_db = result.stdout.split("Creating database '", 1)[1].split("'", 1)[0]
        assert result.stderr.startswith(f"{PROG}: pg_restore failed (exit 1): "), result.stderr
        assert f"; database 'live' is unchanged; the new database '{new_db}' could not be dropped (" \
            in result.stderr
        assert result.stderr.endswith(
            ") and is left: the next rollback of 'live' drops it; fix the cause, then run the rollback "
            "again [restore-failed]\n"
        ), result.stderr
        assert "was dropped" not in result.stderr

        server.start()  # on a new port
        live.env.update(base_env(server, "live", db.workdir))
        assert fingerprint(live) == before
        assert new_db in [r[0] for r in live.query("SELECT datname FROM pg_database")]
        again = live.rollback_manager("rollback", dump.name, "--yes")
        assert again.returncode == 0, again.stderr
        assert f"Dropping '{new_db}', left behind by an interrupted rollback" in again.stdout.splitlines()
        assert new_db not in [r[0] for r in live.query("SELECT datname FROM pg_database")]
        assert live.scalar("SELECT count(*) FROM dose") == 500
    finally:
        server.destroy()


BLOCKING = """
# Fault: a slow restore. The restore into the new database waits until the test creates the
# release file, so a second rollback can be started while the first holds the deploy lock.
for arg in "$@"; do
  if [[ $arg == --dbname=* ]]; then
    while [[ ! -e "$RB_RELEASE" ]]; do sleep 0.05; done
  fi
done
exec REAL "$@"
"""




def test_a_second_rollback_is_refused_at_once_naming_the_first(db: Database, tmp_path: Path) -> None:
    dump = make_backup(db)
    release = tmp_path / "release"
    env = db.env | fault_bin(tmp_path, "pg_restore", BLOCKING) | {"RB_RELEASE": str(release)}
    first = subprocess.Popen(
        [sys.executable, str(REPO / "rollback_manager.py"), "rollback", dump.name, "--yes"],
        env=env, cwd=db.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        # the first run holds the advisory lock, and is inside pg_restore (its copy exists)
        def first_is_restoring() -> bool:
            locked = db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            return bool(locked) and any("__restore_" in n for n in side_databases(db))

        wait_for(first_is_restoring, "the first rollback to hold the lock and restore")
        started = time.monotonic()
        second = db.rollback_manager("rollback", dump.name, "--yes")
        assert second.returncode == 1
        assert second.stderr == (
            f"{PROG}: another migration or rollback is running on database '{db.name}' "
            f"(rollback host={socket.gethostname()} pid={first.pid}); wait for it to finish "
            "(or stop it), then run the command again [deploy-locked]\n"
        )
        assert time.monotonic() - started < 15  # refused at once, not after the first finished
    finally:
        release.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert out.splitlines()[-1].startswith(f"OK: database '{db.name}' rolled back to {dump.name}")


# -- a role without CREATEDB: pre-rollback safety backup, then one transaction in place ------------


@pytest.fixture
def owner_role(db: Database, make_role: MakeRole) -> tuple[str, str]:
    """A login role that owns the database and its tables but may not create databases."""
    role = make_role("app", "NOCREATEDB")
    run_as(db, role, tables=True)
    return role.name, role.password


def test_without_createdb_it_restores_in_place_after_a_safety_backup(db: Database, owner_role: Any) -> None:
    role, _password = owner_role
    dump = make_backup(db)
    before = fingerprint(db)
    change_after_backup(db)
    with db.connect() as conn:
        # the app's migration would have created it as the app's role
        conn.execute(f"ALTER TABLE after_backup OWNER TO {role}")
    changed = fingerprint(db)

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "Will take a pre-rollback safety backup, then restore in place in one transaction" in out
    assert not any(line.startswith("Would ") for line in out)  # a real run, not a dry run
    kept = "Kept the replaced state as the safety backup "
    [safety] = [ln.removeprefix(kept) for ln in out if ln.startswith(kept)]
    meta = json.loads((db.workdir / "backups" / safety).with_suffix(".json").read_text())
    assert meta["reason"] == "pre-rollback"
    assert fingerprint(db) == before
    assert db.scalar("SELECT to_regclass('after_backup')") is None
    assert side_databases(db) == []  # nothing created beside the database
    assert db.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'medications_medication'") > 0

    # the printed undo command restores the replaced state from the safety backup
    [undo] = [ln.split(": ", 1)[1] for ln in out if ln.startswith("To undo this rollback: ")]
    assert undo == f"python rollback_manager.py rollback {safety} --yes"
    again = db.rollback_manager(*undo.split()[2:])
    assert again.returncode == 0, again.stderr
    assert fingerprint(db) == changed


IN_PLACE_HINT = (
    "fix the cause (tables and large objects of other roles must be dropped by their owner), then run "
    "the rollback again"
)
IN_PLACE_HALFWAY = """
# Fault: while the archive streams into the in-place transaction, pg_restore dies (SIGKILL)
# after 60 kB of SQL, in the middle of the data. Other calls run the real pg_restore.
for arg in "$@"; do
  if [[ $arg == --file=- ]]; then
    REAL "$@" | head -c 60000 || true
    kill -9 $$
  fi
done
exec REAL "$@"
"""


def test_in_place_restore_dying_halfway_leaves_the_database_exactly_as_before(
    db: Database, owner_role: Any, tmp_path: Path
) -> None:
    role, _password = owner_role
    dump = make_backup(db)
    change_after_backup(db)
    with db.connect() as conn:
        conn.execute(f"ALTER TABLE after_backup OWNER TO {role}")
    before = fingerprint(db)
    env = fault_bin(tmp_path, "pg_restore", IN_PLACE_HALFWAY)

    result = db.rollback_manager("rollback", dump.name, "--yes", env=env)

    assert result.returncode == 3, result.stdout
    [safety] = [p.name for p in (db.workdir / "backups").glob("*.sql") if p != dump]
    assert result.stderr == (
        f"{PROG}: pg_restore was killed by signal SIGKILL; the transaction was rolled back: database "
        f"'{db.name}' is as it was (safety backup {safety} kept); {IN_PLACE_HINT} [restore-failed]\n"
    )
    assert fingerprint(db) == before


def test_in_place_refuses_to_commit_when_an_object_it_cannot_drop_remains(
    db: Database, owner_role: Any
) -> None:
    role, _password = owner_role
    dump = make_backup(db)
    change_after_backup(db)  # after_backup stays owned by postgres: the role can read it, not drop it
    with db.connect() as conn:
        conn.execute(f"GRANT SELECT ON after_backup TO {role}")
    before = fingerprint(db)

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 3, result.stdout
    [safety] = [p.name for p in (db.workdir / "backups").glob("*.sql") if p != dump]
    assert result.stderr == (
        f"{PROG}: psql failed (exit 3): ERROR: rollback check: 15 tables, the backup has 14; "
        "the transaction was rolled "
        f"back: database '{db.name}' is as it was (safety backup {safety} kept); {IN_PLACE_HINT} "
        "[restore-failed]\n"
    )
    assert fingerprint(db) == before


LOSSY = """
# Fault: a restore that silently loses rows. The real pg_restore succeeds, then five rows of
# medications_doselog vanish from the new database before the kit checks it.
for arg in "$@"; do
  if [[ $arg == --dbname=* ]]; then
    REAL "$@" || :
    psql -X -q "${arg#--dbname=}" -c "DELETE FROM medications_doselog WHERE id IN
      (SELECT id FROM medications_doselog ORDER BY id LIMIT 5)"
    exit 0
  fi
done
exec REAL "$@"
"""


def test_a_restored_copy_that_does_not_match_the_metadata_is_dropped(db: Database, tmp_path: Path) -> None:
    dump = make_backup(db)
    meta = json.loads(metadata.meta_path_for(dump).read_text())
    expected = meta["row_counts"]["public.medications_doselog"]
    change_after_backup(db)
    before = fingerprint(db)
    env = fault_bin(tmp_path, "pg_restore", LOSSY)

    result = db.rollback_manager("rollback", dump.name, "--yes", env=env)

    assert result.returncode == 1, result.stdout
    assert result.stderr == (
        f"{PROG}: the restored copy does not match the backup's metadata: public.medications_doselog has "
        f"{expected - 5:,} rows, the backup {expected:,}; database '{db.name}' is unchanged (the new "
        "database was dropped); fix the cause, then run the rollback again [restore-verify]\n"
    )
    assert fingerprint(db) == before
    assert side_databases(db) == []


def test_the_enhanced_profile_works_for_a_role_that_may_not_create_databases(
    db: Database, owner_role: Any
) -> None:
    """Deep validation needs a scratch database: without CREATEDB the enhanced profile falls back to
    the full read and says why; validate-backup --deep says the check could not run, never invalid."""
    role, _password = owner_role
    why = (f"role '{role}' may not create databases (CREATEDB), so no scratch database for a test restore")
    backup = db.run([str(REPO / "production_migrate_enhanced.sh"), "backup"])
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert (f"warning: deep validation could not run ({why}); the backup is checked by its full read only"
            in backup.stderr.splitlines())
    assert backup.stdout.splitlines()[-1].startswith("OK: backup ")
    assert "is complete and verified (full read)" in backup.stdout.splitlines()[-1]
    [dump] = (db.workdir / "backups").glob("*.sql")

    deep = db.rollback_manager("validate-backup", dump.name, "--deep")
    assert deep.returncode == 1
    assert deep.stderr == (
        f"{PROG}: the deep check of {dump.name} could not run: {why}; the backup passed the full check "
        "(every data block read), which says nothing against it; grant the role CREATEDB for test "
        "restores, or run validate-backup --full [deep-check-unavailable]\n"
    )
    assert "invalid" not in deep.stdout + deep.stderr

    migrate = db.run([str(REPO / "production_migrate_enhanced.sh"), "migrate", "--interval", "0.5"])
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert migrate.stdout.splitlines()[-1].startswith("OK: applied 5 migration(s) in ")
