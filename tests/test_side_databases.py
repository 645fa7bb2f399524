"""Databases beside the target: kept replaced databases, leftovers of interrupted commands, a target
left refusing connections; one log line per event; the rollback script run by the owner.

Real PostgreSQL throughout: kept databases come from a real rollback or are created under the names
the kit gives them; a scratch database "created ten minutes ago" is one whose PG_VERSION file's
modification time (what the kit reads its age from) was set back on the server's disk.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from devtools.pg_server import create_database, drop_database
from migration_tools.backup import deep
from migration_tools.backup import side_databases as sides
from migration_tools.core import audit
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.sizes import human_size
from migration_tools.pg import databases, deploy_lock
from tests.support import REPO, Database, backup_files, make_backup, side_databases, take_backup

PROG = "rollback_manager.py"
CLEANUP = "python rollback_manager.py cleanup-backups"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 (INFO|WARNING|ERROR) \[[a-z-]+\] user=\S+ .*")


# -- helpers ---------------------------------------------------------------------------------------


def size_of(db: Database, name: str) -> int:
    return int(db.scalar("SELECT pg_database_size(%s)", (name,)))


def exists(db: Database, name: str) -> bool:
    return bool(db.scalar("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)))


def age_on_disk(db: Database, name: str, minutes: float) -> None:
    """Make `name` look created `minutes` ago to the kit: its PG_VERSION file's mtime, set back."""
    oid = db.scalar("SELECT oid FROM pg_database WHERE datname = %s", (name,))
    version = db.server.datadir / "base" / str(oid) / "PG_VERSION"
    moment = version.stat().st_mtime - minutes * 60
    os.utime(version, (moment, moment))


def params_of(db: Database) -> ConnParams:
    return ConnParams(db.name, "postgres", "127.0.0.1", db.server.port, db.server.password)


def status_lines(result: subprocess.CompletedProcess[str], *starts: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(starts)]


@pytest.fixture
def beside(db: Database) -> Iterator[list[str]]:
    """Names of databases a test creates that the `db` fixture does not drop (`<db>__*` it does)."""
    extra: list[str] = []
    yield extra
    for name in extra:
        drop_database(db.server, name)


# -- kept databases ------------------------------------------------------------------------------


def test_kept_databases_are_listed_with_their_size_by_list_backups_and_status(db: Database) -> None:
    dump = make_backup(db)
    rolled = db.rollback_manager("rollback", dump.name, "--yes")
    assert rolled.returncode == 0, rolled.stderr
    (newest,) = side_databases(db)  # the database the rollback replaced, kept
    older = databases.side_name(db.name, databases.UNDONE_TAG, "20260101_000000_abcd")
    create_database(db.server, older)  # what the printed undo command sets aside

    listing = db.rollback_manager("list-backups")

    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    at = lines.index(f"Databases kept beside '{db.name}' (replaced by rollbacks or their undo), newest first:"
                     )
    assert lines[at + 1].split() == ["Database", "Kept", "since", "(UTC)", "Size"]
    stamp = newest.rpartition("__pre_rollback_")[2]
    when = f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"
    assert lines[at + 2].split() == [newest, *when.split(), *human_size(size_of(db, newest)).split()]
    assert lines[at + 3].split() == [older, "2026-01-01", "00:00:00", *human_size(size_of(db, older)).split()]
    total = human_size(size_of(db, newest) + size_of(db, older))
    assert lines[-1] == f"OK: 1 backup(s), 1 valid; newest valid: {dump.name}; 2 kept database(s), {total}"

    data = json.loads(db.rollback_manager("list-backups", "--json").stdout)
    assert [(k["name"], k["size_bytes"]) for k in data["kept_databases"]] == [
        (newest, size_of(db, newest)), (older, size_of(db, older))
    ]
    assert data["kept_databases"][1]["kept_at"] == "2026-01-01T00:00:00+00:00"

    status = db.script("status")
    assert status.returncode == 0, status.stderr
    assert status_lines(status, "✓ kept databases: ") == [
        f"✓ kept databases: 2 kept by rollbacks, {total} in all, newest '{newest}' ({when} UTC); "
        f"{CLEANUP} --keep N keeps the newest N"
    ]

    # The server out of reach: the files are still listed; the kept databases are not.
    down = db.rollback_manager("list-backups", env={"DB_PORT": "1"})
    assert down.returncode == 0, down.stderr
    assert down.stderr.splitlines() == [
        "warning: kept databases not listed: cannot connect to PostgreSQL at 127.0.0.1:1 (server down "
        "or wrong port)"
    ]
    assert down.stdout.splitlines()[-1] == f"OK: 1 backup(s), 1 valid; newest valid: {dump.name}"
    assert json.loads(db.rollback_manager("list-backups", "--json", env={"DB_PORT": "1"}).stdout)[
        "kept_databases"] is None


def test_cleanup_keeps_the_newest_kept_databases_of_this_target_only(db: Database, beside: list[str]) -> None:
    newest = databases.side_name(db.name, databases.ASIDE_TAG, "20260301_000000_abcd")
    middle = databases.side_name(db.name, databases.UNDONE_TAG, "20260201_000000_abcd")
    oldest = databases.side_name(db.name, databases.ASIDE_TAG, "20260101_000000_abcd")
    theirs = databases.side_name(db.name + "x", databases.ASIDE_TAG, "20200101_000000_abcd")
    beside.append(theirs)
    for name in (newest, middle, oldest, theirs):
        create_database(db.server, name)
    take_backup(db)

    nothing = db.rollback_manager("cleanup-backups", "--keep", "1", "--older-than", "36500", "--dry-run")
    assert nothing.returncode == 0, nothing.stderr
    assert "Would drop" not in nothing.stdout
    dry = db.rollback_manager("cleanup-backups", "--keep", "1", "--dry-run")

    sizes = {name: human_size(size_of(db, name)) for name in (middle, oldest)}
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"Would drop database '{middle}' (kept since 2026-02-01 00:00:00 UTC, {sizes[middle]})",
        f"Would drop database '{oldest}' (kept since 2026-01-01 00:00:00 UTC, {sizes[oldest]})",
        f"OK: dry run: would remove 0 backup(s) and 0 leftover file(s); keeping 1 valid backup(s), newest "
        f"{backup_files(db)[0].name}; would drop 2 kept database(s) and 0 leftover database(s), keeping 1 "
        "kept database(s); nothing was changed",
    ]
    assert all(exists(db, name) for name in (newest, middle, oldest, theirs))

    someone = db.connect(oldest)  # someone looking at it: the drop (WITH (FORCE)) ends the session
    sizes = {name: human_size(size_of(db, name)) for name in (middle, oldest)}
    try:
        run = db.rollback_manager("cleanup-backups", "--keep", "1")
    finally:
        someone.close()

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:2] == [
        f"Dropping database '{middle}' (kept since 2026-02-01 00:00:00 UTC, {sizes[middle]})",
        f"Dropping database '{oldest}' (kept since 2026-01-01 00:00:00 UTC, {sizes[oldest]}, 1 session(s) "
        "connected (ended by a drop))",
    ]
    assert run.stdout.splitlines()[-1].endswith(
        "; dropped 2 kept database(s) and 0 leftover database(s), keeping 1 kept database(s)"
    )
    assert not exists(db, middle) and not exists(db, oldest)
    assert exists(db, newest) and exists(db, theirs)  # another target's kept database is not this one's
    log = (db.workdir / "rollback.log").read_text()
    assert f"cleanup-backups dropped database {middle}" in log
    assert f"cleanup-backups dropped database {oldest}" in log


# -- leftovers of interrupted rollbacks and deep checks ----------------------------------------------


def minutes_ago(text: str) -> list[str]:
    """The lines of `text`, 'created 0 min ago' (1 on a slow run) written 'created N min ago'."""
    return re.sub(r"created [0-4] min ago", "created N min ago", text).splitlines()


def created_on_disk(db: Database, name: str) -> str:
    """The creation time the kit reads for `name` (its PG_VERSION file's mtime), as it prints it."""
    oid = db.scalar("SELECT oid FROM pg_database WHERE datname = %s", (name,))
    mtime = (db.server.datadir / "base" / str(oid) / "PG_VERSION").stat().st_mtime
    return datetime.fromtimestamp(int(mtime), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_leftover_restore_copies_and_scratch_databases_are_shown_by_status_and_dropped_by_cleanup(
    db: Database, beside: list[str]
) -> None:
    copy = databases.side_name(db.name, databases.RESTORE_TAG, databases.new_stamp())  # a killed rollback's
    stale, young, busy = (deep.scratch_name(db.name) for _ in range(3))  # killed deep checks, a running one
    theirs = deep.scratch_name(db.name + "x")  # another database's deep check
    beside.extend([stale, young, busy, theirs])
    for name in (copy, stale, young, busy, theirs):
        create_database(db.server, name)
    for name in (stale, theirs):
        age_on_disk(db, name, minutes=10)
    assert all(sides.is_scratch_of(name, db.name) for name in (stale, young, busy))
    assert not sides.is_scratch_of(theirs, db.name)
    running = db.connect(busy)  # a deep check's restore, connected
    try:
        status = db.script("status")
        assert status.returncode == 0, status.stderr
        size = {name: human_size(size_of(db, name)) for name in (copy, stale, young)}
        created = {name: f"created {created_on_disk(db, name)} (from its PG_VERSION file)"
                   for name in (stale, young)}
        scratch_lines = {
            name: f"! leftover scratch database: '{name}' (left by an interrupted deep check, "
            f"{created[name]}, {size[name]}); {CLEANUP} drops it{later}"
            for name, later in ((stale, ""), (young, " once it is 5 minutes old"))
        }
        scratch_lines[busy] = (
            f"✓ deep-check scratch database: '{busy}': in use by a running deep check (1 session(s))"
        )
        assert status_lines(status, "! leftover", "✓ deep-check") == [
            f"! leftover restore copy: '{copy}' (left by an interrupted rollback, {size[copy]}); {CLEANUP} "
            "drops it, so does the next rollback",
            *(scratch_lines[name] for name in sorted(scratch_lines)),
        ]
        assert theirs not in status.stdout

        # While a rollback holds the deploy lock the restore copy may be its own: left alone.
        with deploy_lock.hold(params_of(db), "rollback"):
            dry = db.rollback_manager("cleanup-backups", "--dry-run")
            locked = db.rollback_manager("cleanup-backups")
            held = db.script("status")
        holder = f"rollback host={socket.gethostname()} pid={os.getpid()}"
        assert dry.returncode == 0, dry.stderr
        assert [line for line in dry.stdout.splitlines() if line.startswith("Would drop")] == [
            f"Would drop database '{stale}' (left by an interrupted deep check, {created[stale]}, "
            f"{size[stale]})"
        ]
        assert sorted(minutes_ago(dry.stderr)) == sorted([
            f"warning: left database '{copy}': {holder} holds the deploy lock and may be restoring into it",
            f"warning: left database '{young}': created N min ago (from its PG_VERSION file): a deep check "
            "may still be running; run cleanup-backups again later",
            f"warning: left database '{busy}': 1 session(s) connected: a deep check uses it",
        ])
        assert locked.returncode == 0, locked.stderr
        assert locked.stderr.splitlines() == [
            "warning: kept and leftover databases not looked at: another migration or rollback is running on "
            f"database '{db.name}' ({holder}); only the files were"
        ]
        assert f"✓ restore copy: '{copy}': in use by {holder} (it holds the deploy lock)" in held.stdout
        assert all(exists(db, name) for name in (copy, stale, young, busy))

        run = db.rollback_manager("cleanup-backups")
    finally:
        running.close()

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"Dropping database '{copy}' (left by an interrupted rollback, {size[copy]})",
        f"Dropping database '{stale}' (left by an interrupted deep check, {created[stale]}, {size[stale]})",
        "OK: removed 0 backup(s) and 0 leftover file(s); keeping 0 valid backup(s), newest none; dropped 0 "
        "kept database(s) and 2 leftover database(s), keeping 0 kept database(s)",
    ]
    assert sorted(minutes_ago(run.stderr)) == sorted([
        f"warning: left database '{young}': created N min ago (from its PG_VERSION file): a deep check may "
        "still be running; run cleanup-backups again later",
        f"warning: left database '{busy}': 1 session(s) connected: a deep check uses it",
    ])
    assert not exists(db, copy) and not exists(db, stale)
    assert exists(db, young) and exists(db, busy) and exists(db, theirs)
    log = (db.workdir / "rollback.log").read_text()
    assert f"cleanup-backups dropped database {copy}" in log
    assert f"cleanup-backups dropped database {stale}" in log
    assert re.search(rf"cleanup-backups left database {re.escape(young)}: created \d min ago", log)


@pytest.fixture
def owner(db: Database) -> Iterator[tuple[str, str]]:
    """A login role with CREATEDB that owns the database and its tables, not a superuser."""
    role, password = f"own_{db.name}", f"Own3r-{db.name}"
    with db.connect("postgres") as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB NOSUPERUSER PASSWORD '{password}'")
        conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO {role}')
    with db.connect() as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        for (table,) in tables:
            conn.execute(f'ALTER TABLE public."{table}" OWNER TO {role}')
    yield role, password
    with db.connect("postgres") as conn:
        for name in side_databases(db):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datdba = %s::regrole",
                                    (role,)).fetchall():
            if name != db.name:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with db.connect() as conn:
        conn.execute(f"REASSIGN OWNED BY {role} TO postgres")
        conn.execute(f"DROP OWNED BY {role}")
    with db.connect("postgres") as conn:
        conn.execute(f"DROP ROLE {role}")


def test_a_scratch_database_of_unknown_age_is_dropped_only_after_staying_idle(
    db: Database, owner: tuple[str, str]
) -> None:
    """The owner role may not read PG_VERSION (pg_stat_file) and commit timestamps are off: no age."""
    role, password = owner
    scratch = deep.scratch_name(db.name)
    with db.connect("postgres") as conn:
        conn.execute(f'CREATE DATABASE "{scratch}" OWNER {role}')  # as the owner's deep check made it
    age_on_disk(db, scratch, minutes=60)  # old, but this role cannot know it
    as_owner = {"DB_USER": role, "DB_PASSWORD": password}
    unknown = f"age unknown: dropped only if no session connects within {sides.QUIET_WATCH_S:.0f}s"

    status = db.script("status", env=as_owner)
    assert status.returncode == 0, status.stderr
    size = human_size(size_of(db, scratch))
    assert status_lines(status, "! leftover") == [
        f"! leftover scratch database: '{scratch}' (left by an interrupted deep check, {unknown}, {size}); "
        f"{CLEANUP} drops it"
    ]
    dry = db.rollback_manager("cleanup-backups", "--dry-run", env=as_owner)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (
        f"Would drop database '{scratch}' (left by an interrupted deep check, {unknown}, {size})"
    )
    started = time.monotonic()
    run = db.rollback_manager("cleanup-backups", env=as_owner)
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started >= sides.QUIET_WATCH_S  # it watched before dropping
    assert run.stdout.splitlines()[0] == (
        f"Dropping database '{scratch}' (left by an interrupted deep check, {unknown}, {size})"
    )
    assert not exists(db, scratch)


# -- a target an interrupted swap left unusable ------------------------------------------------------


def psql_env(db: Database) -> dict[str, str]:
    return {"PGPASSWORD": db.server.password}


def test_status_names_the_repair_of_a_target_left_refusing_connections(db: Database) -> None:
    with db.connect("postgres") as conn:
        conn.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS false')  # as a swap killed outright
    try:
        status = db.script("status")

        assert status.returncode == 1
        reopen = (f"psql -h 127.0.0.1 -p {db.server.port} -U postgres -d postgres "
                  f"-c 'ALTER DATABASE \"{db.name}\" ALLOW_CONNECTIONS true'")
        assert status.stderr.splitlines() == [
            f"production_migrate.sh: database '{db.name}' refuses every connection (datallowconn is false): "
            "a rollback's swap was interrupted before it could let them in again; the next rollback repairs "
            "it first (python rollback_manager.py rollback FILENAME, or emergency-rollback); to let "
            f"connections in now without a rollback: {reopen} [db-refusing]"
        ]
        log = (db.workdir / "migration.log").read_text()
        assert "ERROR [status] user=" in log
        assert f"status: database '{db.name}' refuses every connection" in log
        repaired = db.run(["bash", "-c", reopen], env=psql_env(db))  # the command it names, as printed
        assert repaired.returncode == 0, repaired.stderr
        assert db.script("status").returncode == 0
    finally:
        with db.connect("postgres") as conn:
            conn.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')


def test_status_names_the_repair_of_a_target_renamed_aside_by_a_half_done_swap(db: Database) -> None:
    aside = databases.side_name(db.name, databases.ASIDE_TAG, databases.new_stamp())
    with db.connect("postgres") as conn:
        conn.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS false')  # as a swap does first
        conn.execute(f'ALTER DATABASE "{db.name}" RENAME TO "{aside}"')  # then killed between the two renames
    try:
        status = db.script("status")

        assert status.returncode == 1
        back = (f"psql -h 127.0.0.1 -p {db.server.port} -U postgres -d postgres "
                f"-c 'ALTER DATABASE \"{aside}\" RENAME TO \"{db.name}\"' "
                f"-c 'ALTER DATABASE \"{db.name}\" ALLOW_CONNECTIONS true'")
        assert status.stderr.splitlines() == [
            f"production_migrate.sh: database '{db.name}' does not exist, but '{aside}' (what it was before "
            "the newest rollback) does: a rollback's swap was interrupted between its two renames; rename it "
            f"back: {back}; then run status again [db-swap-interrupted]"
        ]
        repaired = db.run(["bash", "-c", back], env=psql_env(db))
        assert repaired.returncode == 0, repaired.stderr
        assert db.script("status").returncode == 0
    finally:
        with db.connect("postgres") as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.name,)).fetchone():
                conn.execute(f'ALTER DATABASE "{aside}" RENAME TO "{db.name}"')
            conn.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')


# -- one event, one line ------------------------------------------------------------------------------


def test_a_postgresql_error_with_detail_hint_and_context_is_one_log_line(
    db: Database, tmp_path: Path
) -> None:
    """A real error from the server, logged as the kit logs a failure; and a traceback."""
    with db.connect() as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint'; "
                     "END $$")
    log_path = tmp_path / "migration.log"
    logger = audit.setup(log_path, "migrate")
    try:
        logger.error("migration failed: %s", raised.value)
        try:
            raise RuntimeError("first line\nsecond line")
        except RuntimeError:
            logger.exception("unexpected error")
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
    lines = log_path.read_text().splitlines()
    assert len(lines) == 2 and all(LOG_LINE.fullmatch(line) for line in lines), lines
    assert lines[0].split(" ", 1)[1] == (
        f"ERROR [migrate] user={getpass.getuser()} migration failed: boom | DETAIL:  the detail | "
        "HINT:  the hint | CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE"
    )
    assert " unexpected error | Traceback (most recent call last): | File " in lines[1]
    assert lines[1].endswith("RuntimeError: first line | second line")


PROBE_MIGRATION = '''
from django.db import migrations


class Migration(migrations.Migration):
    operations = [migrations.RunSQL("DO $$ BEGIN PERFORM 1 / 0; END $$", migrations.RunSQL.noop)]
'''


def test_a_migration_failing_inside_plpgsql_is_one_line_in_migration_log(
    demo_db: Database, tmp_path: Path
) -> None:
    """A real `migrate`: an app whose migration's DO block divides by zero (PostgreSQL adds CONTEXT)."""
    app = tmp_path / "plpgsql_probe"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "migrations" / "0001_boom.py").write_text(PROBE_MIGRATION)
    (tmp_path / "plpgsql_settings.py").write_text(
        "from medguard_backend.settings.production import *  # noqa: F403\n"
        "from medguard_backend.settings.production import INSTALLED_APPS\n"
        "INSTALLED_APPS = [*INSTALLED_APPS, 'plpgsql_probe']\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "plpgsql_settings", "PYTHONPATH": f"{tmp_path}:{REPO}"}

    result = demo_db.script("migrate", "--no-backup", env=env)

    assert result.returncode == 3, result.stdout + result.stderr
    lines = (demo_db.workdir / "migration.log").read_text().splitlines()
    assert all(LOG_LINE.fullmatch(line) for line in lines), lines
    context = [line for line in lines if "CONTEXT:" in line]
    assert context, lines
    assert all('division by zero | CONTEXT:  SQL statement "SELECT 1 / 0" | PL/pgSQL function '
               "inline_code_block line 1 at PERFORM" in line for line in context), context


# -- the standalone rollback script, run by the database's owner ---------------------------------------


def test_the_rollback_script_run_by_the_owner_prints_no_superuser_only_warning(
    db: Database, owner: tuple[str, str]
) -> None:
    role, password = owner
    take_backup(db)
    dump, _, script = backup_files(db)
    as_owner = {"DB_USER": role, "DB_PASSWORD": password}
    # What the script ran before: a plain ANALYZE, which warns once per shared catalog for the owner.
    plain = db.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(db.server.port), "-U", role, "-d", db.name,
                    "-c", "ANALYZE"], env={"PGPASSWORD": password})
    assert plain.returncode == 0, plain.stderr
    # "only superuser can analyze" up to PostgreSQL 15, "permission denied to analyze" from 16 on
    warned = [w for w in ("only superuser can analyze", "permission denied to analyze") if w in plain.stderr]
    assert len(warned) == 1 and plain.stderr.count(warned[0]) >= 5, plain.stderr

    result = db.run([str(script), "--yes"], env=as_owner)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "only superuser" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"OK: restored {dump.name} into {db.name} on 127.0.0.1:{db.server.port}"
    )
    # The restored tables were analyzed all the same (planner statistics), by the owner.
    with db.connect() as conn:
        analyzed = conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
        ).fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM pg_stat_user_tables").fetchone()[0]
        owned = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s",
                             (role,)).fetchone()[0]
    assert analyzed == tables == owned > 0
    assert db.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'medications_medication'") > 0
