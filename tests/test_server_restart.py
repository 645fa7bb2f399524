"""The server stopped mid-migrate and restarted (issue 10): the kit says truly where the database
stands, and after the restart `status` agrees with it.

A server of the module's own, really stopped (`pg_ctl stop -m fast`) while a migration of the
demo's release queues for a lock another session holds, then started again (on a new port): the
suite's shared server must keep running for the other tests.

The session holding the lock does what an application transaction that wrote to the dose log
does: `ROW EXCLUSIVE` on `medications_doselog`. The pre-migrate backup (ACCESS SHARE) goes through,
the release's first two migrations (the notifications' new foreign key and the irreversible purge)
run, and the third, `CREATE INDEX` on the dose log (SHARE), queues behind it: the issue's "after
the restart, 2 of 5 applied" when each migration commits on its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.pg_server import HarnessError, Server, create_database, drop_database
from tests.support import EXAMPLE, REPO, Database, base_env, fingerprint, side_databases, wait_for

PROG = "production_migrate.sh"
SEED_DB = "seeded_release"
WAITING = "medications.0003_doselog_scheduled_at_idx"
FIRST_TWO = ["medguard_notifications.0002_notification_medication",
             "medguard_notifications.0003_purge_expired_notifications"]
# The first line of whatever error the lost connection raised, as the kit quotes it.
REASON = r"(?P<reason>[A-Za-z.]*Error: [^;]+)"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A PostgreSQL of this module, with the demo seeded at its released state into a template."""
    server = Server(tmp_path_factory.mktemp("own pg"), fast=True)
    try:
        server.start()
    except HarnessError as exc:
        pytest.fail(f"this module's PostgreSQL did not start: {exc}")
    try:
        create_database(server, SEED_DB)
        workdir = tmp_path_factory.mktemp("seed")
        seeded = subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), "seed_demo"],
            env=base_env(server, SEED_DB, workdir), cwd=workdir, capture_output=True, text=True,
            check=False, timeout=120,
        )
        assert seeded.returncode == 0, f"seed_demo failed: {seeded.stderr}"
        yield server
    finally:
        server.destroy()


@pytest.fixture
def live(own_server: Server, tmp_path: Path) -> Iterator[Database]:
    """A copy of the seeded demo on the module's server (started again if a test left it down)."""
    own_server.start()
    name = f"r_{uuid.uuid4().hex[:10]}"
    create_database(own_server, name, template=SEED_DB)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    database = Database(own_server, name, workdir, base_env(own_server, name, workdir))
    yield database
    own_server.start()
    with database.connect("postgres") as conn:
        for side in side_databases(database):
            conn.execute(f'DROP DATABASE IF EXISTS "{side}" WITH (FORCE)')
    drop_database(own_server, name)


def restart(database: Database) -> None:
    """Start the stopped server again (on a new port) and point the database's commands at it."""
    database.server.start()
    database.env.update(base_env(database.server, database.name, database.workdir))


def queued_for_a_lock(database: Database, query_start: str) -> int:
    return int(database.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
        "AND query LIKE %s", (database.name, query_start + "%"),
    ))


def migrate_until_the_server_stops(database: Database, *args: str) -> tuple[int, str, str]:
    """`production_migrate.sh migrate ARGS` while another session holds the dose log; once the
    release's CREATE INDEX queues for its lock the server is stopped. Returns (exit, out, err)."""
    holder = psycopg.connect(host="127.0.0.1", port=database.server.port, user="postgres",
                             password=database.server.password, dbname=database.name)
    proc: subprocess.Popen[str] | None = None
    try:
        holder.execute("LOCK TABLE medications_doselog IN ROW EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [str(REPO / PROG), "migrate", *args], env=database.env, cwd=database.workdir,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        wait_for(lambda: queued_for_a_lock(database, "CREATE INDEX") or proc.poll() is not None,
                 "the release's CREATE INDEX to queue for its lock", timeout=60)
        assert proc.poll() is None, "migrate ended before it reached the dose log: " + "".join(
            proc.communicate())
        database.server.stop()  # pg_ctl stop -m fast -w
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"migrate still ran 60 s after the server stopped\nstdout:\n{out}\nstderr:\n{err}")
        return proc.returncode, out, err
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        with contextlib.suppress(psycopg.Error):
            holder.close()


def log_messages(database: Database) -> list[str]:
    """migration.log's messages, without the time, level, command and OS user."""
    found = []
    for line in (database.workdir / "migration.log").read_text().splitlines():
        match = re.fullmatch(r"\S+ (?P<level>[A-Z]+) \[migrate\] user=\S+ (?P<message>.*)", line)
        assert match, line
        found.append(f"{match['level']} {match['message']}")
    return found


def labels(applied: set[tuple[str, str]]) -> set[str]:
    return {f"{app}.{name}" for app, name in applied}


def unfinished_lines(status: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in status.stdout.splitlines() if "unfinished run" in line]


def the_backup(database: Database) -> Path:
    dumps = sorted((database.workdir / "backups").glob("*.sql"))
    assert len(dumps) == 1, dumps
    return dumps[0]


def state_file(database: Database) -> Path:
    return database.workdir / ".migration_kit" / f"run_{database.name}.json"


def test_one_transaction_a_server_stopped_mid_migrate_leaves_nothing_applied_and_says_so(
    live: Database,
) -> None:
    before = live.applied()
    shape: dict[str, Any] = fingerprint(live)

    code, out, err = migrate_until_the_server_stops(live)

    assert code == 1, out + err
    assert len(err.splitlines()) == 1, err
    match = re.fullmatch(
        rf"{PROG}: migration {WAITING} failed and the database could not be reached afterwards "
        rf"\({REASON}\); the plan ran in one transaction that was never committed, so PostgreSQL "
        rf"discards it: no migration of this run is applied; once the server answers, check with "
        rf"{PROG} status \[undo-unchecked\]\n",
        err,
    )
    assert match, err
    assert "[internal]" not in out + err
    lines = out.splitlines()
    [failed] = [ln for ln in lines if ln.startswith("FAILED: ")]
    assert failed.startswith(f"FAILED: {WAITING}: "), out
    assert f"UNDO FAILED: {match['reason']}" in lines, out

    messages = log_messages(live)
    assert any(m.startswith("INFO pre-migrate backup medguard_backup_") for m in messages), messages
    assert any(m.startswith(f"ERROR migration {WAITING} failed: ") for m in messages), messages
    assert f"ERROR undo failed: {match['reason']}" in messages, messages
    # Nothing of the run was committed, so nothing is logged as applied.
    assert not [m for m in messages if m.startswith("INFO applied ")], messages

    restart(live)
    assert live.applied() == before
    assert fingerprint(live) == shape  # schema and data exactly as before: the purge never happened
    status = live.script("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert unfinished_lines(status) == [], status.stdout
    assert "✓ deploy lock: free" in status.stdout.splitlines()
    assert f"OK: 5 migration(s) pending on postgres@127.0.0.1:{live.server.port}/{live.name}" \
        in status.stdout.splitlines(), status.stdout
    assert not state_file(live).exists()


def test_commit_each_a_server_stopped_mid_migrate_names_what_stayed_applied_until_restored(
    live: Database,
) -> None:
    before = live.applied()
    shape: dict[str, Any] = fingerprint(live)

    code, out, err = migrate_until_the_server_stops(live, "--commit-each")

    backup = the_backup(live).name
    restore = f"python rollback_manager.py rollback {backup} --yes"
    assert code == 1, out + err
    assert len(err.splitlines()) == 1, err
    match = re.fullmatch(
        rf"{PROG}: MIGRATION {WAITING.upper()} FAILED AND UNDOING IT FAILED \({REASON}\): the database "
        rf"is half-migrated; this run applied 2 migration\(s\): {re.escape(', '.join(FIRST_TWO))}; "
        rf"restore the pre-migrate backup now: {re.escape(restore)} \[rollback-failed\]\n",
        err,
    )
    assert match, err
    assert "[internal]" not in out + err
    lines = out.splitlines()
    assert f"[1/5] {FIRST_TWO[0]} applied in " in out and f"[2/5] {FIRST_TWO[1]} applied in " in out, out
    [failed] = [ln for ln in lines if ln.startswith("FAILED: ")]
    assert failed.startswith(f"FAILED: {WAITING}: "), out
    assert f"UNDO FAILED: {match['reason']}" in lines, out

    messages = log_messages(live)
    assert f"INFO pre-migrate backup {backup}" in messages, messages
    assert [m.split(" in ", 1)[0] for m in messages if m.startswith("INFO applied ")] == [
        f"INFO applied {label}" for label in FIRST_TWO
    ], messages
    assert any(m.startswith(f"ERROR migration {WAITING} failed: ") for m in messages), messages
    assert f"ERROR undo failed: {match['reason']}" in messages, messages
    assert state_file(live).exists()  # what remembers the run while the server is down

    restart(live)
    assert labels(live.applied() - before) == set(FIRST_TWO)
    assert live.applied() >= before
    status = live.script("status")
    assert status.returncode == 0, status.stdout + status.stderr
    [line] = unfinished_lines(status)
    assert re.fullmatch(
        r"! unfinished run: an earlier migrate \(pid \d+ on \S+, started \S+\) did not finish; "
        rf"2 migration\(s\) of it stay applied: {re.escape(', '.join(FIRST_TWO))}; "
        rf"to return to the state before it: {re.escape(restore)}",
        line,
    ), line

    rolled_back = live.rollback_manager("rollback", backup, "--yes")
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    assert rolled_back.stdout.splitlines()[-1].startswith(
        f"OK: database '{live.name}' rolled back to {backup} in "
    ), rolled_back.stdout
    assert live.applied() == before
    assert fingerprint(live) == shape  # the purged notifications are back, the new column gone
    again = live.script("status")
    assert again.returncode == 0, again.stdout + again.stderr
    assert unfinished_lines(again) == [], again.stdout
    assert not state_file(live).exists()
