"""Rollbacks run as the database's owner rather than a superuser, with the application connected.

Real roles, created per test with a random suffix and dropped afterwards; real sessions of
another role (the application), a real session idle in a transaction holding a lock, a real
large object, a database really left refusing connections. Each test asserts the exit code,
the printed line and the database state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from devtools.pg_server import create_database
from tests.support import (
    ROLLBACK_PROG,
    Database,
    MakeRole,
    Role,
    change_after_backup,
    fingerprint,
    make_backup,
    rollback_log_lines,
    run_as,
    side_databases,
    take_backup,
    wait_for,
)

PROG = ROLLBACK_PROG
WRITES = "Rows written since the backup, which this rollback discards: "


def connect_as(db: Database, role: Role, *, app: str = "medguard-app", autocommit: bool = True) -> Any:
    return psycopg.connect(host="127.0.0.1", port=db.server.port, user=role.name, password=role.password,
                           dbname=db.name, autocommit=autocommit, application_name=app)


def allows_connections(db: Database) -> bool:
    with db.connect("postgres") as conn:
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (db.name,)).fetchone()
    assert row is not None
    return bool(row[0])


def safety_backups(db: Database) -> list[str]:
    metas = (json.loads(p.read_text()) for p in (db.workdir / "backups").glob("*.json"))
    return sorted(m["file"] for m in metas if m["reason"] == "pre-rollback")


# -- sessions of another role ------------------------------------------------------------------


def test_sessions_the_owner_may_not_end_are_refused_before_anything_changes(
    db: Database, make_role: MakeRole
) -> None:
    owner, app = make_role("own", "CREATEDB"), make_role("app")
    run_as(db, owner, tables=False)
    dump = make_backup(db)
    change_after_backup(db)
    before = fingerprint(db)
    with connect_as(db, app) as session:
        session.execute("SELECT 1")

        result = db.rollback_manager("rollback", dump.name, "--yes")

        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr == (
            f"{PROG}: role '{owner}' may not end 1 session(s) connected to '{db.name}': {app} (medguard-app, "
            f"pid {session.info.backend_pid}); a swap ends every session, so nothing was changed; as a "
            f"superuser run GRANT pg_signal_backend TO {owner} (or GRANT {app} TO {owner}), or "
            "stop those sessions, then run the rollback again (or restore in place with --in-place) "
            "[sessions-not-endable]\n"
        )
        assert session.execute("SELECT 1").fetchone() == (1,)  # the application's session is untouched
    assert not any(line.startswith("Creating database") for line in result.stdout.splitlines())
    assert fingerprint(db) == before
    assert side_databases(db) == []
    assert allows_connections(db)


@pytest.mark.parametrize("grant", ["pg_signal_backend", "the application's role"])
def test_with_the_privilege_the_owner_ends_the_applications_sessions_and_swaps(
    db: Database, make_role: MakeRole, grant: str
) -> None:
    owner, app = make_role("own", "CREATEDB"), make_role("app")
    run_as(db, owner, tables=False)
    with db.connect("postgres") as conn:
        conn.execute(f"GRANT {'pg_signal_backend' if grant == 'pg_signal_backend' else app} TO {owner}")
    dump = make_backup(db)
    wanted = fingerprint(db)
    change_after_backup(db)
    with connect_as(db, app) as session:
        session.execute("SELECT 1")

        result = db.rollback_manager("rollback", dump.name, "--yes")

        assert result.returncode == 0, result.stdout + result.stderr
        assert "Ended 1 session(s) connected to the old database" in result.stdout.splitlines(), result.stdout
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    assert fingerprint(db) == wanted
    assert allows_connections(db)


# -- a database property the swap cannot copy --------------------------------------------------


@pytest.mark.parametrize("kind", ["another role's setting", "a superuser-only setting"])
def test_a_property_the_swap_cannot_copy_is_told_before_acting_and_in_place_works(
    db: Database, make_role: MakeRole, kind: str
) -> None:
    owner = make_role("own", "CREATEDB")  # NOCREATEROLE: it may not set another role's settings
    other = make_role("other", login=False)
    with db.connect("postgres") as conn:
        if kind == "another role's setting":
            what = f"setting statement_timeout for role {other}"
            conn.execute(f"ALTER ROLE {other} IN DATABASE \"{db.name}\" SET statement_timeout = '7s'")
        else:
            what = "setting log_min_duration_statement"
            conn.execute(f'ALTER DATABASE "{db.name}" SET log_min_duration_statement = 1000')
    run_as(db, owner, tables=True)
    settings = ("SELECT setrole, setconfig FROM pg_db_role_setting s JOIN pg_database d "
                "ON d.oid = s.setdatabase WHERE d.datname = current_database() ORDER BY 1")
    kept_settings = db.query(settings)
    dump = make_backup(db)
    wanted = fingerprint(db)
    change_after_backup(db)
    with db.connect() as conn:
        conn.execute(f"ALTER TABLE after_backup OWNER TO {owner}")
    changed = fingerprint(db)

    for args in (("--dry-run",), ("--yes",)):
        refused = db.rollback_manager("rollback", dump.name, *args)

        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stderr.startswith(
            f"{PROG}: cannot give the new database the {what} of '{db.name}' as this role: permission denied"
        ), refused.stderr
        assert refused.stderr.endswith(
            "; nothing was changed; restore in place instead with --in-place (the database, its settings and "
            "privileges stay as they are), run the rollback as a role that may set it (a superuser), or "
            f"remove the {what} from '{db.name}' [copy-property]\n"
        ), refused.stderr
        assert not any(line.startswith("Creating database") for line in refused.stdout.splitlines())
        assert fingerprint(db) == changed
        assert side_databases(db) == []

    result = db.rollback_manager("rollback", dump.name, "--yes", "--in-place")

    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "Will take a pre-rollback safety backup, then restore in place in one transaction" in out
    assert (f"  (--in-place was given; everything in '{db.name}' the role owns, large objects included, "
            "is replaced by the backup's contents)") in out
    assert fingerprint(db) == wanted
    assert db.query(settings) == kept_settings  # the database and its settings stay as they were
    assert side_databases(db) == []


# -- in place: large objects and lock waits ----------------------------------------------------


def test_in_place_restores_large_objects_as_the_backup_holds_them(db: Database, make_role: MakeRole) -> None:
    owner = make_role("own")  # no CREATEDB: in place
    run_as(db, owner, tables=True)
    with connect_as(db, owner) as conn:
        [(scan,)] = conn.execute("SELECT lo_from_bytea(0, %s)",
                                 (b"prescription scan at backup time",)).fetchall()
        # Rows whose COPY lines read like transaction control: the archive's SQL passes through whole.
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('BEGIN;'), ('COMMIT;')")
    dump = make_backup(db)
    wanted = fingerprint(db)
    with connect_as(db, owner) as conn:
        conn.execute("SELECT lo_put(%s, 0, %s)", (scan, b"OVERWRITTEN"))
        [(later,)] = conn.execute("SELECT lo_from_bytea(0, 'created after the backup')").fetchall()

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 0, result.stderr
    assert db.scalar("SELECT lo_get(%s)", (scan,)) == b"prescription scan at backup time"
    assert db.scalar("SELECT pg_get_userbyid(lomowner) FROM pg_largeobject_metadata WHERE oid = %s",
                     (scan,)) == owner.name
    assert db.scalar("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (later,)) == 0
    assert [r[0] for r in db.query("SELECT body FROM notes ORDER BY 1")] == ["BEGIN;", "COMMIT;"]
    assert fingerprint(db) == wanted
    assert len(safety_backups(db)) == 1


@dataclass
class Writer:
    """The application: one short write every 50 ms from its own session, each statement timed."""

    db: Database
    role: Role
    statement: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                with connect_as(self.db, self.role, app="medguard-writer") as conn:
                    while not self.stop.is_set():
                        started = time.monotonic()
                        conn.execute(self.statement)
                        self.latencies.append(time.monotonic() - started)
                        time.sleep(0.05)
            except psycopg.Error as exc:
                self.errors.append(str(exc).strip().splitlines()[0])
                time.sleep(0.05)

    def __enter__(self) -> Writer:
        self.thread.start()
        wait_for(lambda: len(self.latencies) >= 3, "the application to write")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture
def app_with_a_stuck_transaction(db: Database, make_role: MakeRole) -> Iterator[tuple[Role, Role, Any]]:
    """The kit's role owns everything (no CREATEDB: in place); the application's role holds a lock on
    users_user in a transaction it left idle."""
    owner, app = make_role("own"), make_role("app")
    run_as(db, owner, tables=True)
    with db.connect() as conn:
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}")
    stuck = connect_as(db, app, app="stuck-worker", autocommit=False)
    stuck.execute("UPDATE users_user SET last_login = last_login WHERE id = (SELECT min(id) FROM users_user)")
    try:
        yield owner, app, stuck
    finally:
        stuck.close()


LOCK_TIMEOUT = 1.0


def test_in_place_never_stalls_the_application_longer_than_the_lock_timeout_per_try(
    db: Database, app_with_a_stuck_transaction: tuple[Role, Role, Any]
) -> None:
    owner, app, stuck = app_with_a_stuck_transaction
    dump = make_backup(db)
    wanted = fingerprint(db)
    writes = ("UPDATE medications_medication SET name = name "
              "WHERE id = (SELECT min(id) FROM medications_medication)")

    with Writer(db, app, writes) as writer:
        result = db.rollback_manager("rollback", dump.name, "--yes", "--lock-timeout", f"{LOCK_TIMEOUT:g}")

    assert result.returncode == 3, result.stdout + result.stderr
    [safety] = safety_backups(db)  # one per rollback, not one per try
    holder = f"{app} (stuck-worker, pid {stuck.info.backend_pid})"
    assert result.stderr.startswith(
        f"{PROG}: the tables to replace could not be locked within 1s in 5 tries (the application waited at "
        f"most 1s each time): held by {holder}"
    ), result.stderr
    assert result.stderr.endswith(
        f"; the transaction was rolled back: database '{db.name}' is as it was (safety backup {safety} "
        f"kept); end or commit those sessions (role '{owner}' may not end them: as a superuser run GRANT "
        f"pg_signal_backend TO {owner} (or GRANT {app} TO {owner})), then run the rollback again "
        "[rollback-locked]\n"
    ), result.stderr
    tries = [line for line in result.stdout.splitlines() if "were not granted within 1s" in line]
    assert len(tries) == 4 and all(holder in line for line in tries)
    # The application's statements queued behind the rollback's lock requests, never longer than a try.
    assert writer.errors == []
    assert max(writer.latencies) > 0.5 * LOCK_TIMEOUT  # it was really held up
    assert max(writer.latencies) < LOCK_TIMEOUT + 0.75, sorted(writer.latencies)[-5:]
    assert fingerprint(db) == wanted

    stuck.rollback()  # the application lets go: the next rollback goes through, with its own safety backup
    again = db.rollback_manager("rollback", dump.name, "--yes", "--lock-timeout", f"{LOCK_TIMEOUT:g}")
    assert again.returncode == 0, again.stderr
    assert len(safety_backups(db)) == 2
    assert fingerprint(db) == wanted


def test_in_place_ends_a_session_that_keeps_its_lock_when_the_role_may(
    db: Database, app_with_a_stuck_transaction: tuple[Role, Role, Any]
) -> None:
    owner, app, stuck = app_with_a_stuck_transaction
    with db.connect("postgres") as conn:
        conn.execute(f"GRANT pg_signal_backend TO {owner}")
    dump = make_backup(db)
    wanted = fingerprint(db)
    change_after_backup(db)
    with db.connect() as conn:
        conn.execute(f"ALTER TABLE after_backup OWNER TO {owner}")
    holder = f"{app} (stuck-worker, pid {stuck.info.backend_pid})"

    result = db.rollback_manager("emergency-rollback", "--yes", "--lock-timeout", f"{LOCK_TIMEOUT:g}")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert out[0] == f"Newest valid backup of '{db.name}': {dump.name}"
    assert "  the application waits at most 1s per try for the tables it locks (5 tries at most)" in out
    assert (f"  ended 1 session(s) that held locks on the tables to replace through two tries: {holder}"
            in out)
    assert "Ended 1 session(s) that held locks on the replaced tables" in out
    with pytest.raises(psycopg.OperationalError):
        stuck.execute("SELECT 1")
    assert len(safety_backups(db)) == 1
    assert fingerprint(db) == wanted
    assert "in-place rollback ended 1 session(s) holding locks" in "\n".join(rollback_log_lines(db))


# -- a swap killed outright ---------------------------------------------------------------------


def test_a_database_left_refusing_connections_is_allowed_them_again_by_the_next_rollback(
    db: Database,
) -> None:
    dump = make_backup(db)
    wanted = fingerprint(db)
    change_after_backup(db)
    # What a rollback killed (SIGKILL) between "block logins" and "rename" leaves: its restore copy,
    # and the live database refusing connections; nothing holds the deploy lock.
    left = f"{db.name}__restore_20260101_000000_ab12"
    create_database(db.server, left)
    with db.connect("postgres") as conn:
        conn.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS false')
    found = (f"Database '{db.name}' refuses connections (datallowconn = false), as a rollback killed during "
             "its swap leaves it, and no rollback is running")

    dry = db.rollback_manager("rollback", dump.name, "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert f"{found}: the rollback would allow connections again first" in dry.stdout.splitlines()
    assert not allows_connections(db)  # a dry run changes nothing

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == f"{found}: allowed connections again"
    assert f"Dropping '{left}', left behind by an interrupted rollback" in out
    assert allows_connections(db)
    assert fingerprint(db) == wanted
    assert left not in side_databases(db)
    assert f"database {db.name} refused connections (left so by an interrupted swap)" in \
        "\n".join(rollback_log_lines(db))


# -- what the plan says ------------------------------------------------------------------------


def test_the_plan_says_would_only_for_a_dry_run(db: Database) -> None:
    make_backup(db)

    dry = db.rollback_manager("emergency-rollback", "--dry-run")
    real = db.rollback_manager("emergency-rollback", "--yes")

    assert dry.returncode == 0 and real.returncode == 0, dry.stderr + real.stderr
    dry_out, real_out = dry.stdout.splitlines(), real.stdout.splitlines()
    [new_db] = [ln.split("'")[1] for ln in dry_out if ln.startswith("Would restore it into a new database '")]
    assert f"  sessions connected to '{db.name}' would be ended at the swap" in dry_out
    assert any(ln.startswith("Will restore it into a new database '") for ln in real_out)
    assert f"  sessions connected to '{db.name}' will be ended at the swap" in real_out
    assert not any(ln.startswith("Would") or " would " in ln for ln in real_out), real_out
    assert new_db.startswith(f"{db.name}__restore_")


def test_the_plan_names_the_rows_written_since_the_backup(db: Database) -> None:
    take_backup(db)  # the kit's backup records the statistics' write counters
    [dump] = sorted((db.workdir / "backups").glob("*.sql"))

    quiet = db.rollback_manager("rollback", dump.name, "--dry-run")

    assert quiet.returncode == 0, quiet.stderr
    assert f"{WRITES}none since the backup" in quiet.stdout.splitlines()

    with db.connect() as conn:  # the application goes on writing after the backup
        conn.execute("CREATE TABLE after_backup (id int PRIMARY KEY)")
        conn.execute("INSERT INTO after_backup SELECT generate_series(1, 12)")
        conn.execute("DELETE FROM medguard_notifications_notification WHERE id IN "
                     "(SELECT id FROM medguard_notifications_notification ORDER BY id LIMIT 3)")

    def flushed() -> bool:  # the writer's statistics reach the shared counters as its backend exits
        return db.scalar("SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables "
                         "WHERE relname = 'after_backup'") == 12

    wait_for(flushed, "the writes to reach the statistics")
    line = (f"{WRITES}public.after_backup (12 row(s)), "
            "public.medguard_notifications_notification (3 row(s))")

    dry = db.rollback_manager("rollback", dump.name, "--dry-run")
    real = db.rollback_manager("rollback", dump.name, "--yes")

    assert dry.returncode == 0 and real.returncode == 0, dry.stderr + real.stderr
    assert line in dry.stdout.splitlines()
    out = real.stdout.splitlines()
    assert out.index(line) < next(i for i, ln in enumerate(out) if ln.startswith("Will restore it"))

    by_hand = make_backup(db)  # a backup without write counters
    unknown = db.rollback_manager("rollback", by_hand.name, "--dry-run")
    assert f"{WRITES}cannot be told: {by_hand.name} records no write counters" in unknown.stdout.splitlines()
