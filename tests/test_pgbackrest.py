"""The pgBackRest tier (MIGRATION_KIT["BACKUP_FORMAT"] = "pgbackrest") end to end: a real cluster whose
WAL a real pgBackRest archives into a repository on local disk (devtools/pg_backrest.py), the
demo seeded in it; backups are pgBackRest backups plus named restore points, rollbacks are
point-in-time restores of the whole cluster through the configured stop and start commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.pg_backrest import STANZA, BackrestServer
from devtools.pg_server import create_database, free_port
from tests.support import EXAMPLE, REPO, Database, base_env, use_kit_settings

KILLED = REPO / "tests" / "fixtures" / "bin" / "pgbackrest_killed.sh"
FAIL_ONCE = REPO / "tests" / "fixtures" / "bin" / "fail_once.sh"


@pytest.fixture(scope="module")
def br(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackrestServer]:
    server = BackrestServer(tmp_path_factory.mktemp("pg_backrest"))
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def demo(br: BackrestServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = "demo_br"
    create_database(br, name)
    workdir = tmp_path_factory.mktemp("br_seed")
    seeded = Database(br, name, workdir, base_env(br, name, workdir)).run(
        [sys.executable, str(EXAMPLE / "manage.py"), "seed_demo"])
    assert seeded.returncode == 0, seeded.stderr
    return name


def use(db: Database, tmp_path: Path, **pgbackrest: Any) -> None:
    """Run the kit with the demo's settings, the pgBackRest tier and these PGBACKREST keys."""
    assert isinstance(db.server, BackrestServer)
    values = {k: v for k, v in (db.server.kit_settings() | pgbackrest).items() if v is not None}
    use_kit_settings(db, tmp_path / "settings", {"BACKUP_FORMAT": "pgbackrest", "PGBACKREST": values})


@pytest.fixture
def bdb(br: BackrestServer, demo: str, tmp_path: Path) -> Database:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    db = Database(br, demo, workdir, base_env(br, demo, workdir))
    use(db, tmp_path)
    return db


def labels(br: BackrestServer) -> list[str]:
    out = subprocess.run([*br.pgbackrest(), f"--stanza={STANZA}", "--output=json", "info"],
                         capture_output=True, text=True, check=True).stdout
    return [b["label"] for b in json.loads(out)[0].get("backup", [])]


def backup(db: Database) -> str:
    done = db.script("backup")
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"^Restore point: (\S+) at LSN", done.stdout, re.MULTILINE)
    assert found, done.stdout
    return found.group(1)


def points(db: Database) -> list[str]:
    return sorted(p.name for p in (db.workdir / "backups").glob("*_pitr_*.json"))


def doselogs(db: Database) -> int:
    return int(db.scalar("SELECT count(*) FROM medications_doselog"))


def test_backup_metadata_list_validate_and_expire(bdb: Database, br: BackrestServer, tmp_path: Path) -> None:
    first = backup(bdb)
    meta = json.loads((bdb.workdir / "backups" / f"{first}.json").read_text())
    assert meta["format"] == "pgbackrest" and meta["stanza"] == STANZA
    assert meta["restore_point"]["name"] == first
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", meta["restore_point"]["lsn"])
    assert meta["backup_label"] in labels(br)
    assert meta["row_counts"]["public.medications_doselog"] == doselogs(bdb)
    assert sorted(map(tuple, meta["applied_migrations"])) == sorted(bdb.applied())
    assert (bdb.workdir / "backups" / f"{first}.json").stat().st_mode & 0o077 == 0
    assert f"Newest backup: restore point {first} (" in bdb.script("status").stdout
    second = backup(bdb)
    # The operator's own pgBackRest runs (in the host's TZ, here UTC) still work after the kit's,
    # whose Django process runs in the demo's TIME_ZONE (UTC+2): pgBackRest labels by local time.
    own = subprocess.run([*br.pgbackrest(), f"--stanza={STANZA}", "--type=incr", "backup"],
                         capture_output=True, text=True, check=False, env={k: v for k, v in os.environ.items()
                                                                        if k != "TZ"})
    assert own.returncode == 0, own.stdout + own.stderr
    assert json.loads((bdb.workdir / "backups" / f"{second}.json").read_text())["backup_type"] == "incr"

    listed = bdb.rollback_manager("list-backups")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^  {second} .* valid$", listed.stdout, re.MULTILINE), listed.stdout
    assert f"newest valid: {second}" in listed.stdout
    shown = json.loads(bdb.rollback_manager("list-backups", "--json").stdout)
    assert [p["name"] for p in shown["restore_points"]] == [second, first]

    valid = bdb.rollback_manager("validate-backup", f"{first}.json")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "pgbackrest verify: every file of the repository matches its checksum" in valid.stdout

    # A new full backup, then expire keeping one full: the older backups go, and so do their points.
    use(bdb, tmp_path, BACKUP_TYPE="full", RETENTION_FULL=1)
    third = backup(bdb)
    dry = bdb.rollback_manager("cleanup-backups", "--dry-run")
    assert dry.returncode == 0 and f"Would remove {first}.json" in dry.stdout, dry.stdout + dry.stderr
    assert len(points(bdb)) == 3
    cleaned = bdb.rollback_manager("cleanup-backups")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert points(bdb) == [f"{third}.json"]
    assert len(labels(br)) == 1
    gone = bdb.rollback_manager("validate-backup", f"{third}.json")
    assert gone.returncode == 0, gone.stdout + gone.stderr


def test_release_rolled_back_to_its_restore_point_and_the_rollback_undone(bdb: Database) -> None:
    before = bdb.applied()
    migrated = bdb.script("migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Backup: restore point" in migrated.stdout
    released = bdb.applied()
    assert released > before
    bdb.query("DELETE FROM medications_doselog WHERE id % 3 = 0 RETURNING id")
    left = doselogs(bdb)
    point = re.search(r"Backup: restore point (\S+) after", migrated.stdout)
    assert point, migrated.stdout
    checked = bdb.script("verify-data")  # rows lost since the newest backup: the pre-migrate point
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"rows compared with {point.group(1)}.json" in checked.stdout
    assert re.search(r"public.medications_doselog: [0-9,]+ row\(s\) fewer than in the backup", checked.stdout)

    plan = bdb.rollback_manager("emergency-rollback", "--dry-run")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "Point-in-time restore of the WHOLE CLUSTER" in plan.stdout
    assert "Every database of the cluster goes back to that moment: demo_br, postgres." in plan.stdout
    assert bdb.applied() == released  # a dry run changes nothing

    rolled = bdb.rollback_manager("emergency-rollback", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert bdb.applied() == before
    assert doselogs(bdb) > left
    assert "match the restore point's metadata" in rolled.stdout
    undo = re.search(r"^To undo this rollback: python rollback_manager.py rollback (\S+)$", rolled.stdout,
                     re.MULTILINE)
    assert undo, rolled.stdout

    # The replaced state (the release applied, the rows deleted) comes back by name, from the old timeline.
    back = bdb.rollback_manager("rollback", undo.group(1), "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert bdb.applied() == released and doselogs(bdb) == left


def test_rollback_refused_without_server_commands(bdb: Database, br: BackrestServer, tmp_path: Path) -> None:
    point = backup(bdb)
    use(bdb, tmp_path, SERVER_STOP_COMMAND=None, SERVER_START_COMMAND=None)
    before = labels(br)
    refused = bdb.rollback_manager("rollback", point, "--yes")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no SERVER_STOP_COMMAND and SERVER_START_COMMAND; nothing was changed" in refused.stderr
    assert refused.stderr.strip().endswith("[pitr-no-server-command]")
    assert labels(br) == before  # no safety backup either
    assert bdb.scalar("SELECT 1") == 1  # the server still runs


def test_a_failed_start_puts_back_the_state_before_the_rollback(bdb: Database, br: BackrestServer,
                                                                tmp_path: Path) -> None:
    """Fault: the configured start command fails once after the restore (a service manager refusing)."""
    point = backup(bdb)
    bdb.query("DELETE FROM medications_doselog WHERE id % 7 = 0 RETURNING id")
    now, applied = doselogs(bdb), bdb.applied()
    start = [str(FAIL_ONCE), str(tmp_path / "started-once"), *br.server_command("start")]
    use(bdb, tmp_path, SERVER_START_COMMAND=start)
    failed = bdb.rollback_manager("rollback", point, "--yes")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "the point-in-time restore failed (SERVER_START_COMMAND" in failed.stderr
    assert "the cluster is back at the state before the rollback" in failed.stderr
    assert failed.stderr.strip().endswith("[pitr-failed]")
    assert doselogs(bdb) == now and bdb.applied() == applied


def test_backup_killed_halfway_records_no_restore_point(bdb: Database, br: BackrestServer,
                                                        tmp_path: Path) -> None:
    """Fault: the pgBackRest backup process is killed with SIGKILL once it has started copying."""
    stanza_dir = br.home / "repo" / "backup" / STANZA
    use(bdb, tmp_path, COMMAND=[str(KILLED), str(stanza_dir), *br.pgbackrest()], BACKUP_TYPE="full")
    killed = bdb.script("backup")
    assert killed.returncode == 1, killed.stdout + killed.stderr
    assert "pgbackrest backup failed (exit 137)" in killed.stderr, killed.stderr
    assert killed.stderr.strip().endswith("[pgbackrest]")
    assert points(bdb) == []
    use(bdb, tmp_path)
    assert points(bdb) == [] and backup(bdb)
    assert len(points(bdb)) == 1


def test_restore_beside_the_running_cluster(bdb: Database, br: BackrestServer) -> None:
    point = backup(bdb)
    at_point = doselogs(bdb)
    bdb.query("DELETE FROM medications_doselog WHERE id % 5 = 0 RETURNING id")
    now = doselogs(bdb)
    side, port = br.side_owner_dir(f"side_{uuid.uuid4().hex[:6]}"), free_port()
    try:
        copied = bdb.rollback_manager("rollback", point, "--yes", "--side-datadir", str(side), "--side-port",
                                      str(port))
        assert copied.returncode == 0, copied.stdout + copied.stderr
        assert f"The restored copy runs from {side} on port {port}" in copied.stdout
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=br.password,
                             dbname=bdb.name) as conn:
            assert conn.execute("SELECT count(*) FROM medications_doselog").fetchone() == (at_point,)
        assert doselogs(bdb) == now  # the running cluster was not touched
    finally:
        br.stop_datadir(side)


def test_role_that_may_not_create_restore_points_is_refused(bdb: Database, br: BackrestServer) -> None:
    role, password = f"app_{uuid.uuid4().hex[:6]}", "Pw-" + uuid.uuid4().hex[:10]
    with bdb.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    before = labels(br)
    refused = bdb.script("backup", env={"DB_USER": role, "DB_PASSWORD": password})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"role '{role}' may not create restore points (pg_create_restore_point(text), pg_switch_wal())" \
        in refused.stderr
    assert f"GRANT EXECUTE ON FUNCTION pg_switch_wal() TO {role}; then run" in refused.stderr
    assert labels(br) == before and points(bdb) == []
    # Granted those two functions and read access, a role that is not a superuser takes the backup.
    with bdb.connect() as conn:
        for grant in ("EXECUTE ON FUNCTION pg_create_restore_point(text)",
                      "EXECUTE ON FUNCTION pg_switch_wal()", "SELECT ON ALL TABLES IN SCHEMA public"):
            conn.execute(f"GRANT {grant} TO {role}")
    granted = bdb.script("backup", env={"DB_USER": role, "DB_PASSWORD": password})
    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert len(points(bdb)) == 1 and len(labels(br)) == len(before) + 1


@pytest.mark.parametrize(
    ("kit", "named"),
    [
        ({"BACKUP_FORMAT": "pgbackrest"}, "MIGRATION_KIT['PGBACKREST'] is not a dict"),
        ({"BACKUP_FORMAT": "pgbackrest", "PGBACKREST": {"STANZA": ""}}, "['STANZA'] is ''"),
        ({"BACKUP_FORMAT": "pgbackrest", "PGBACKREST": {"STANZA": "main", "COMMAND": "pgbackrest"}},
         "['COMMAND'] is 'pgbackrest', not a non-empty list of strings"),
        ({"BACKUP_FORMAT": "pgbackrest", "PGBACKREST": {"STANZA": "main", "BACKUP_TYPE": "snapshot"}},
         "['BACKUP_TYPE'] is 'snapshot', not one of incr, diff, full"),
    ],
)
def test_bad_pgbackrest_settings_stop_before_anything(db: Database, tmp_path: Path, kit: dict[str, Any],
                                                       named: str) -> None:
    use_kit_settings(db, tmp_path / "settings", kit)
    refused = db.script("backup")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert named in refused.stderr and refused.stderr.strip().endswith("[settings-pgbackrest]")
    assert not (db.workdir / "backups").exists() or not any((db.workdir / "backups").iterdir())
