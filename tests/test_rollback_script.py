"""The standalone rollback script (rollback_scripts/rollback_<TS>.sh) against the kit's own rollback.

Real PostgreSQL, real psql/pg_restore: the script and the kit name their side databases alike,
shape the new database alike, share the deploy lock and the maintenance database. Faults are
real: a pg_restore wrapper first on PATH that blocks until the test kills the script's process
group, a role that may not copy a property.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from devtools.throwaway_pg import Server, create_database, drop_database
from migration_tools.backup import metadata
from migration_tools.backup import script as rollback_script
from migration_tools.core.djangoenv import ConnParams
from migration_tools.pg import databases, deploy_lock
from tests.support import (
    REPO,
    Database,
    backup_files,
    base_env,
    execute,
    fault_bin,
    fingerprint,
    flip_bytes,
    make_backup,
    side_databases,
    stderr_last,
    take_backup,
    wait_for,
)

SHELLCHECK = REPO / ".venv" / "bin" / "shellcheck"
TEMPLATE = REPO / "migration_tools" / "backup" / "rollback_script.sh"
PROG = "rollback_manager.py"


# -- helpers ---------------------------------------------------------------------------------


def sides(database: Database) -> dict[str, list[str]]:
    """The kit's own view of the side databases of `database` (clipped names included)."""
    with database.connect("postgres") as conn:
        return databases.side_databases(conn, database.name)


def drop_sides(database: Database) -> None:
    with database.connect("postgres") as conn:
        for names in databases.side_databases(conn, database.name).values():
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shellcheck(path: Path) -> None:
    check = subprocess.run([str(SHELLCHECK), str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture
def script_db(demo_db: Database) -> Iterator[Database]:
    """The demo database; every side database of it (as the kit names them) dropped afterwards."""
    yield demo_db
    drop_sides(demo_db)


@pytest.fixture
def long_db(pg: Server, demo_template: str, tmp_path: Path) -> Iterator[Database]:
    """A demo database whose multibyte name fills 62 of PostgreSQL's 63 bytes: side names clip it."""
    name = f"t_{uuid.uuid4().hex[:8]}_médgüard_ünïcödé_çàfé_"
    name += "é" * ((62 - len(name.encode())) // 2)
    assert 61 <= len(name.encode()) <= 62
    create_database(pg, name, template=demo_template)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    database = Database(pg, name, workdir, base_env(pg, name, workdir))
    yield database
    drop_sides(database)
    drop_database(pg, name)


def properties(database: Database) -> dict[str, Any]:
    """What the swap must carry over: owner, ACL, connection limit, settings, comment, locale."""
    with database.connect("postgres") as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba), datacl::text, datconnlimit, "
            "shobj_description(oid, 'pg_database'), pg_encoding_to_char(encoding), datcollate, datctype "
            "FROM pg_database WHERE datname = %s",
            (database.name,),
        ).fetchone()
        acl = conn.execute(
            "SELECT pg_get_userbyid(a.grantor), "
            "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, "
            "a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
            "WHERE d.datname = %s ORDER BY 1, 2, 3",
            (database.name,),
        ).fetchall()
        settings = conn.execute(
            "SELECT CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, "
            "ARRAY(SELECT unnest(s.setconfig) ORDER BY 1) "
            "FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = %s ORDER BY 1",
            (database.name,),
        ).fetchall()
    owner, datacl, limit, comment, *locale = row
    return {"owner": owner, "datacl": datacl, "acl": acl, "connlimit": limit, "settings": settings,
            "comment": comment, "locale": locale}


# -- no PostgreSQL needed ------------------------------------------------------------------


def test_side_name_clips_a_multibyte_database_name_to_63_bytes_without_splitting_a_character():
    stamp = databases.new_stamp()
    assert len(stamp) == databases.STAMP_LEN == 20
    name = "a" + "é" * 40  # 81 bytes; every é is two
    restore = databases.side_name(name, "restore", stamp)
    aside = databases.side_name(name, "pre_rollback", stamp)
    # room for the database part: 63 - len("__restore_") - 20 = 33 bytes = "a" + 16 é, exactly
    assert restore == "a" + "é" * 16 + "__restore_" + stamp
    assert len(restore.encode()) == 63
    # 63 - len("__pre_rollback_") - 20 = 28 bytes: "a" + 13 é is 27; a 14th é would be split
    assert aside == "a" + "é" * 13 + "__pre_rollback_" + stamp
    assert len(aside.encode()) == 62
    assert databases.side_prefix(name, "restore") + stamp == restore
    short = databases.side_name("médgüard", "pre_rollback", stamp)
    assert short == f"médgüard__pre_rollback_{stamp}"


def test_two_stamps_taken_in_the_same_second_differ():
    moment = datetime(2026, 11, 25, 18, 15, 0, 123456, tzinfo=timezone.utc)
    stamps = {databases.new_stamp(moment) for _ in range(200)}
    assert len(stamps) == 200
    for stamp in stamps:
        assert re.fullmatch(r"20261125_181500_[0-9a-f]{4}", stamp)
        assert re.match(databases.STAMP_PATTERN, stamp)
    first, second = databases.new_stamp(), databases.new_stamp()
    assert first != second


def test_the_template_and_a_rendered_script_pass_shellcheck(tmp_path: Path):
    shellcheck(TEMPLATE)
    meta = metadata.BackupMeta(
        created_at="2026-11-25T18:15:00Z", reason="pre-migrate\n$(touch /tmp/x) `id`",
        database="it's \"médgüard\" $HOME" + "é" * 30, host="db.example", port=5432, user="app",
        server_version="15.1", server_version_num=150001, pg_dump_version="15.1",
        file="medguard_backup_20261125_181500.sql", size_bytes=1, sha256="0" * 64, toc_entries=1,
        applied_migrations=[], row_counts={"public.t'x": 3, 'public.we"ird': 1},
        django_alias="default", kit_profile="standard",
    )
    rendered = tmp_path / "rollback_20261125_181500.sh"
    rollback_script.write(meta, tmp_path / meta.file, rendered)
    text = rendered.read_text()
    assert re.search(r"@[A-Z][A-Z0-9_]*@", text) is None  # every placeholder filled
    shellcheck(rendered)
    helped = subprocess.run([str(rendered), "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: rollback_20261125_181500.sh [--yes]" in helped.stdout
    assert "<DB_NAME>__pre_rollback_<stamp>" in helped.stdout
    prefix = databases.side_prefix(meta.database, "restore")
    assert len(prefix.encode()) + databases.STAMP_LEN <= 63


# -- the script on its own ---------------------------------------------------------------------


def test_rollback_script_restores_exactly_that_backup_and_keeps_the_old_database(script_db: Database):
    demo_db = script_db
    take_backup(demo_db)
    dump, _, script = backup_files(demo_db)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert demo_db.server.password not in text
    shellcheck(script)
    execute(demo_db, "DELETE FROM medications_doselog WHERE id % 2 = 0")
    execute(demo_db, "CREATE TABLE created_after_backup (id int)")
    before = demo_db.scalar("SELECT count(*) FROM medications_doselog")
    assert before < 3000
    stale = databases.side_name(demo_db.name, "restore", databases.new_stamp())
    create_database(demo_db.server, stale)  # what a killed kit rollback leaves behind

    result = demo_db.run([str(script), "--yes"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"OK: restored {dump.name} into {demo_db.name} on 127.0.0.1:{demo_db.server.port}"
    )
    assert f"Dropping '{stale}', left behind by an interrupted rollback" in result.stdout.splitlines()
    assert demo_db.scalar("SELECT count(*) FROM medications_doselog") == 3000
    assert demo_db.scalar("SELECT to_regclass('created_after_backup')") is None
    found = sides(demo_db)
    (old,) = found["pre_rollback"]  # named as the kit names it: <db>__pre_rollback_<stamp>
    assert old == databases.side_name(demo_db.name, "pre_rollback", old.rpartition("__pre_rollback_")[2])
    assert side_databases(demo_db) == [old]
    with demo_db.connect(old) as conn:
        assert conn.execute("SELECT count(*) FROM medications_doselog").fetchone()[0] == before
    assert found["restore"] == []
    # planner statistics: the script ran ANALYZE on the restored database
    assert demo_db.scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'medications_medication'") > 0


def test_rollback_script_refuses_without_a_terminal_another_database_and_a_checksum_mismatch(
    script_db: Database,
):
    demo_db = script_db
    take_backup(demo_db)
    dump, _, script = backup_files(demo_db)
    before = demo_db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()")
    result = demo_db.run([str(script)])
    assert result.returncode == 2
    assert (
        stderr_last(result)
        == f"{script.name}: no terminal to confirm on; run {script.name} --yes to restore without asking"
    )
    other = demo_db.run([str(script), "--yes"], env={"DB_NAME": "postgres"})
    assert other.returncode == 2
    assert stderr_last(other) == (
        f"{script.name}: refusing {dump.name}: it is a backup of database '{demo_db.name}', not "
        "'postgres'; nothing was restored; pick a backup of this database or fix DB_NAME"
    )
    flip_bytes(dump)
    result = demo_db.run([str(script), "--yes"])
    assert result.returncode == 1
    assert stderr_last(result) == (
        f"{script.name}: the SHA-256 of {dump.name} does not match the one recorded at backup time "
        "(the file is corrupted or was changed); nothing was restored; pick another backup"
    )
    assert side_databases(demo_db) == []
    assert demo_db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()") == before
    result = demo_db.run([str(script), "--yes"], env={"DB_PASSWORD": ""})
    assert result.returncode == 2
    assert stderr_last(result) == (
        f"{script.name}: missing environment variable(s): DB_PASSWORD; "
        f"export them, then run {script.name} again"
    )


# -- the script and the kit together ---------------------------------------------------------------


def test_rollback_script_and_the_kit_share_the_deploy_lock(script_db: Database, tmp_path: Path):
    demo_db = script_db
    take_backup(demo_db)
    _, _, script = backup_files(demo_db)
    params = ConnParams(demo_db.name, "postgres", "127.0.0.1", demo_db.server.port, demo_db.server.password)
    before = demo_db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()")
    with deploy_lock.hold(params, "migrate"):
        refused = demo_db.run([str(script), "--yes"])
    assert refused.returncode == 1
    assert stderr_last(refused) == (
        f"{script.name}: another migration or rollback is running on database '{demo_db.name}' (it holds "
        f"the deploy lock); wait for it to finish, then run {script.name} again; nothing was restored"
    )
    assert demo_db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()") == before
    # The other way round: a pg_restore that waits keeps the script (and its lock) alive.
    gate = tmp_path / "gate"
    env = demo_db.env | fault_bin(tmp_path, "pg_restore", f"while [ ! -e '{gate}' ]; do sleep 0.05; done\n"
                                                          'exec REAL "$@"\n')
    running = subprocess.Popen([str(script), "--yes"], env=env, cwd=demo_db.workdir, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        holder = f"migration_kit:lock {script.name}%"
        wait_for(lambda: demo_db.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE %s", (holder,)
        ), "the script to take the deploy lock")
        migrate = demo_db.script("migrate", "--no-backup")
        assert migrate.returncode == 1
        expected = f"running on database '{demo_db.name}' ({script.name} pid="
        assert expected in migrate.stderr
    finally:
        gate.touch()
        _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err


def test_db_maintenance_db_moves_the_lock_for_the_kit_and_the_script_alike(
    script_db: Database, monkeypatch: pytest.MonkeyPatch
):
    demo_db = script_db
    take_backup(demo_db)
    _, _, script = backup_files(demo_db)
    params = ConnParams(demo_db.name, "postgres", "127.0.0.1", demo_db.server.port, demo_db.server.password)
    monkeypatch.setenv("DB_MAINTENANCE_DB", "template1")
    env = {"DB_MAINTENANCE_DB": "template1"}
    with deploy_lock.hold(params, "migrate"):
        where = demo_db.scalar(
            "SELECT d.datname FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted"
        )
        assert where == "template1"
        refused = demo_db.run([str(script), "--yes"], env=env)
    assert refused.returncode == 1
    assert "(it holds the deploy lock)" in stderr_last(refused)
    missing = demo_db.run([str(script), "--yes"], env={"DB_MAINTENANCE_DB": "no_such_db"})
    assert missing.returncode == 1
    assert stderr_last(missing) == (
        f"{script.name}: no maintenance database postgres may connect to (tried: no_such_db); grant "
        "CONNECT on database postgres to postgres or set DB_MAINTENANCE_DB; nothing was restored"
    )
    kit = demo_db.rollback_manager("rollback", backup_files(demo_db)[0].name, "--yes",
                                   env={"DB_MAINTENANCE_DB": "no_such_db"})
    assert kit.returncode == 1
    assert "[maintenance-db]" in kit.stderr and "no_such_db" in kit.stderr
    assert side_databases(demo_db) == []


BLOCK_UNTIL_KILLED = """
# Fault: pg_restore starts (the restore copy exists), says so, and waits to be killed.
touch "$RB_STARTED"
while :; do sleep 0.05; done
"""


def test_a_restore_copy_left_by_a_killed_script_is_dropped_by_the_kits_next_rollback(
    long_db: Database, tmp_path: Path
):
    take_backup(long_db)
    dump, _, script = backup_files(long_db)
    started = tmp_path / "started"
    env = long_db.env | fault_bin(tmp_path, "pg_restore", BLOCK_UNTIL_KILLED) | {"RB_STARTED": str(started)}
    running = subprocess.Popen([str(script), "--yes"], env=env, cwd=long_db.workdir, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        wait_for(started.exists, "the script to start pg_restore")
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.communicate(timeout=60)
    assert running.returncode == -signal.SIGKILL
    wait_for(lambda: not long_db.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"),
             "the killed script's lock session to end")
    (left,) = sides(long_db)["restore"]  # clipped exactly as the kit clips the name
    assert len(left.encode()) <= 63 and not left.startswith(long_db.name)
    assert sides(long_db)["pre_rollback"] == []

    result = long_db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 0, result.stderr
    assert f"Dropping '{left}', left behind by an interrupted rollback" in result.stdout.splitlines()
    found = sides(long_db)
    assert found["restore"] == [] and len(found["pre_rollback"]) == 1


def test_the_script_swaps_in_a_database_shaped_as_the_kit_shapes_it(script_db: Database):
    db = script_db
    role = f"r_{db.name}"
    with db.connect("postgres") as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        conn.execute(f'GRANT CONNECT ON DATABASE "{db.name}" TO {role}')
        conn.execute(f'REVOKE CONNECT ON DATABASE "{db.name}" FROM PUBLIC')
        conn.execute(f'ALTER DATABASE "{db.name}" CONNECTION LIMIT 40')
        conn.execute(f"ALTER DATABASE \"{db.name}\" SET work_mem = '12MB'")
        conn.execute(f'ALTER DATABASE "{db.name}" SET search_path = "$user", public, extra')
        conn.execute(f"ALTER ROLE {role} IN DATABASE \"{db.name}\" SET statement_timeout = '7s'")
        conn.execute(f"COMMENT ON DATABASE \"{db.name}\" IS 'MedGuard''s live database: ünïcode'")
    try:
        original = properties(db)
        assert original["connlimit"] == 40 and original["comment"] == "MedGuard's live database: ünïcode"
        assert ("", ['search_path="$user", public, extra', "work_mem=12MB"]) in original["settings"]
        take_backup(db)
        dump, _, script = backup_files(db)

        by_kit = db.rollback_manager("rollback", dump.name, "--yes")
        assert by_kit.returncode == 0, by_kit.stderr
        after_kit = properties(db)
        by_script = db.run([str(script), "--yes"])
        assert by_script.returncode == 0, by_script.stderr
        after_script = properties(db)

        assert after_script == after_kit  # owner, datacl as it is, settings, comment, locale
        acl_free = {k: v for k, v in original.items() if k != "datacl"}
        assert {k: v for k, v in after_kit.items() if k != "datacl"} == acl_free  # ACL: same entries
        assert len(sides(db)["pre_rollback"]) == 2
    finally:
        drop_sides(db)
        with db.connect() as conn:
            conn.execute(f"DROP OWNED BY {role}")
        with db.connect("postgres") as conn:
            conn.execute(f"DROP ROLE {role}")


@pytest.fixture
def createdb_owner(script_db: Database) -> Iterator[tuple[Database, str]]:
    """The database owned by a CREATEDB login role (so the kit swaps), and another role."""
    db = script_db
    owner, other = f"own_{db.name}", f"other_{db.name}"
    password = "Own3r-" + db.name
    with db.connect("postgres") as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN CREATEDB NOSUPERUSER PASSWORD '{password}'")
        conn.execute(f"CREATE ROLE {other} NOLOGIN")
        conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO {owner}')
        conn.execute(f"ALTER ROLE {other} IN DATABASE \"{db.name}\" SET statement_timeout = '7s'")
    saved = dict(db.env)
    db.env.update(DB_USER=owner, DB_PASSWORD=password)
    yield db, other
    db.env.clear()
    db.env.update(saved)
    drop_sides(db)
    with db.connect("postgres") as conn:
        conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO postgres')
        conn.execute(f"DROP ROLE {other}")
        conn.execute(f"DROP ROLE {owner}")


def test_a_property_the_role_cannot_copy_fails_before_the_target_is_touched(
    createdb_owner: tuple[Database, str], tmp_path: Path
):
    db, other = createdb_owner
    dump = make_backup(db)
    before = fingerprint(db)
    oid = db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()")

    result = db.rollback_manager("rollback", dump.name, "--yes")

    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith(
        f"{PROG}: cannot give the new database the setting statement_timeout for role {other} of "
        f"'{db.name}' as this role: permission denied"
    ), result.stderr
    # Found before anything is created: nothing was changed, and the in-place path is offered.
    assert result.stderr.endswith(
        "; nothing was changed; restore in place instead with --in-place (the database, its settings "
        "and privileges stay as they are), run the rollback as a role that may set it (a superuser), "
        f"or remove the setting statement_timeout for role {other} from '{db.name}' [copy-property]\n"
    ), result.stderr
    assert not any(line.startswith("Restoring ") for line in result.stdout.splitlines())
    assert db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()") == oid
    assert fingerprint(db) == before
    assert side_databases(db) == []

    # The script runs the same statements, and stops at the same one.
    script = rollback_script.write(metadata.load(metadata.meta_path_for(dump)), dump,
                                   metadata.script_path_for(dump, tmp_path))
    by_script = db.run([str(script), "--yes"])
    assert by_script.returncode == 1, by_script.stdout
    assert f"ALTER ROLE {other} IN DATABASE" in by_script.stderr  # psql echoes the failing statement
    assert "permission denied" in by_script.stderr
    assert by_script.stderr.splitlines()[-2].startswith(f"{script.name}: could not give ")
    assert by_script.stderr.splitlines()[-1] == (
        f"{script.name}: restore failed; dropped "
        f"{by_script.stdout.split('Creating database ', 1)[1].split(' ...', 1)[0]}; {db.name} is unchanged"
    )
    assert db.scalar("SELECT oid FROM pg_database WHERE datname = current_database()") == oid
    assert fingerprint(db) == before
    assert side_databases(db) == []


# -- two rollbacks in one second ------------------------------------------------------------

SAME_SECOND = """
import dataclasses, sys
from pathlib import Path
from migration_tools.core import runtime
from migration_tools.restore import plan as rollback_plan
from migration_tools.restore.run import rollback_to

kit = runtime.start("rollback", log_name="rollback")
dump = Path(sys.argv[1])
planned = rollback_plan.plan(kit, dump)
while True:  # two stamps of one second, as two rollbacks started back to back would take
    first, second = rollback_plan.stamp(), rollback_plan.stamp()
    if first[:15] == second[:15]:
        break
for stamp in (first, second):
    done = rollback_to(kit, dump, reason="manual", prepared=dataclasses.replace(planned, stamp=stamp))
    print(stamp, done.kept)
"""


def test_two_rollbacks_of_one_database_in_the_same_second_both_succeed(script_db: Database):
    db = script_db
    dump = make_backup(db)
    result = db.run([sys.executable, "-c", SAME_SECOND, str(dump)])
    assert result.returncode == 0, result.stderr
    (first, kept_first), (second, kept_second) = (line.split() for line in result.stdout.splitlines())
    assert first[:15] == second[:15] and first != second
    assert kept_first == databases.side_name(db.name, "pre_rollback", first)
    assert kept_second == databases.side_name(db.name, "pre_rollback", second)
    assert sorted(sides(db)["pre_rollback"]) == sorted([kept_first, kept_second])
    assert sides(db)["restore"] == []
