"""Client tools of one PostgreSQL major against a server of another, with two real servers.

The session's server runs from PG_BIN (or the default binaries); a second one runs from
PG_BIN_OTHER, a bin directory of another major (`./run_tests.sh --smoke` sets it: 18's tools
beside Debian's 15). Newer pg_dump/pg_restore against the older server must work end to end;
older ones against the newer server are refused by the pre-flight before anything changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg_server import HarnessError, Server, create_database
from tests.support import EXAMPLE, TEMPLATE_DB, Database, backup_files, base_env, stderr_last


def major(server: Server) -> int:
    with Database(server, "postgres", Path(".")).connect("postgres") as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


@pytest.fixture(scope="module")
def other_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    other = os.environ.get("PG_BIN_OTHER")
    if not other:
        pytest.skip("PG_BIN_OTHER (a PostgreSQL bin dir of another major) is not set; "
                    "./run_tests.sh --smoke sets it")
    server = Server(tmp_path_factory.mktemp("pg_other"), fast=True, pg_bin=Path(other))
    try:
        server.start()
    except HarnessError as exc:
        pytest.exit(f"the second PostgreSQL ({other}) did not start: {exc}", returncode=3)
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def older_newer(pg: Server, demo_template: str, other_pg: Server) -> tuple[Server, Server]:
    if major(pg) == major(other_pg):
        pytest.fail(f"PG_BIN_OTHER is PostgreSQL {major(other_pg)}, the same major as the session's server")
    if create_database(other_pg, TEMPLATE_DB):
        seed = subprocess.run([sys.executable, str(EXAMPLE / "manage.py"), "seed_demo"],
                              env=base_env(other_pg, TEMPLATE_DB, Path("/tmp")), capture_output=True,
                              text=True, check=False)
        assert seed.returncode == 0, seed.stderr
    return (pg, other_pg) if major(pg) < major(other_pg) else (other_pg, pg)


def demo_copy(server: Server, tmp_path: Path, tools_of: Server) -> Database:
    """A fresh copy of the seeded demo on `server`, its commands running `tools_of`'s pg_dump."""
    name = f"v_{uuid.uuid4().hex[:10]}"
    create_database(server, name, template=TEMPLATE_DB)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    env = base_env(server, name, workdir)
    env["PATH"] = f"{tools_of.bindir}:{env['PATH']}"
    return Database(server, name, workdir, env)


def test_newer_tools_back_up_migrate_verify_and_roll_back_an_older_server(older_newer, tmp_path):
    older, newer = older_newer
    db = demo_copy(older, tmp_path, tools_of=newer)
    before = db.applied()
    backup = db.script("backup", "--deep")  # the deep check restores with the newer pg_restore too
    assert backup.returncode == 0, backup.stdout + backup.stderr
    [meta] = (db.workdir / "backups").glob("*.json")
    assert f'"pg_dump_version": "{major(newer)}.' in meta.read_text()
    migrated = db.script("migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert db.applied() > before
    verified = db.script("verify-data", "--allow-decrease", "medguard_notifications_notification")
    assert verified.returncode == 0, verified.stdout + verified.stderr  # the release purges expired ones
    assert "Orphan medications: 0" in verified.stdout
    rolled = db.rollback_manager("rollback", meta.with_suffix(".sql").name, "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert db.applied() == before



def test_newer_tools_roll_back_an_older_server_in_place(older_newer, tmp_path):
    older, newer = older_newer
    db = demo_copy(older, tmp_path, tools_of=newer)
    before = db.applied()
    assert db.script("backup").returncode == 0
    [dump] = (db.workdir / "backups").glob("*.sql")
    assert db.script("migrate", "--no-backup").returncode == 0
    rolled = db.rollback_manager("rollback", dump.name, "--yes", "--in-place")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert db.applied() == before



def test_newer_tools_run_the_standalone_rollback_script_against_an_older_server(older_newer, tmp_path):
    older, newer = older_newer
    db = demo_copy(older, tmp_path, tools_of=newer)
    before = db.applied()
    assert db.script("backup").returncode == 0
    _, _, script = backup_files(db)
    assert db.script("migrate", "--no-backup").returncode == 0
    rolled = db.run([str(script), "--yes"])
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert db.applied() == before


@pytest.mark.parametrize("command", ["migrate", "backup", "status"])
def test_older_tools_against_a_newer_server_are_refused_before_anything_changes(
    older_newer, tmp_path, command
):
    older, newer = older_newer
    db = demo_copy(newer, tmp_path, tools_of=older)
    before = db.applied()
    result = db.script(command)
    assert result.returncode == 2, result.stdout + result.stderr
    line = stderr_last(result)
    assert line.startswith(f"production_migrate.sh: pg_dump {major(older)}.")
    assert f"is older than the server ({major(newer)}" in line
    assert f"install PostgreSQL {major(newer)} client tools" in line
    assert line.endswith("[tools]")
    assert db.applied() == before
    assert not list((db.workdir / "backups").glob("*.sql")) if (db.workdir / "backups").exists() else True
