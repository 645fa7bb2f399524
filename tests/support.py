"""Helpers shared by the test modules: the per-test database, backups made by hand, faults, waits.

No test module imports another; what two of them need lives here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from devtools.pg_server import Server
from migration_tools.backup import metadata

BACKUP_PREFIX = "medguard"  # the demo settings' MIGRATION_KIT["BACKUP_PREFIX"]
ROLLBACK_PROG = "rollback_manager.py"

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example"
TEMPLATE_DB = "demo_template"
SETTINGS = "medguard_backend.settings.production"


@dataclass
class Database:
    """A fresh database plus the environment and working directory commands run with."""

    server: Server
    name: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        env = self.env | kwargs.pop("env", {})
        return subprocess.run(
            argv,
            env=env,
            cwd=kwargs.pop("cwd", self.workdir),
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=kwargs.pop("timeout", 240),
            **kwargs,
        )

    def script(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run([str(REPO / "production_migrate.sh"), *args], **kwargs)

    def kit(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "migration_tools", *args], **kwargs)

    def rollback_manager(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, str(REPO / "rollback_manager.py"), *args], **kwargs)

    def connect(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.server.port,
            user="postgres",
            password=self.server.password,
            dbname=dbname or self.name,
            autocommit=True,
        )

    def query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return list(conn.execute(sql, args).fetchall())

    def scalar(self, sql: str, args: Any = None) -> Any:
        return self.query(sql, args)[0][0]

    def applied(self) -> set[tuple[str, str]]:
        return {(a, n) for a, n in self.query("SELECT app, name FROM django_migrations")}


def base_env(server: Server, dbname: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(dbname))
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DJANGO_PROJECT_DIR=str(EXAMPLE),
        PM_PYTHON=sys.executable,
        PM_WORKDIR=str(workdir),
        PYTHONPATH=str(REPO),
    )
    return env


def use_kit_settings(db: Database, folder: Path, kit: dict[str, Any], base: str = SETTINGS) -> None:
    """Run the kit with the settings module `base` plus these MIGRATION_KIT keys: a real module
    written to `folder`, put on the commands' PYTHONPATH."""
    module = f"kit_settings_{uuid.uuid4().hex[:10]}"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(
        f"from {base} import *  # noqa: F403\n"
        f"from {base} import MIGRATION_KIT\n"
        f"MIGRATION_KIT = {{**MIGRATION_KIT, **{kit!r}}}\n"
    )
    path = base_env(db.server, db.name, db.workdir)["PYTHONPATH"]
    db.env.update(DJANGO_SETTINGS_MODULE=module, PYTHONPATH=f"{path}:{folder}")


def make_orphans(db: Database, rows: int) -> None:
    """Orphans that exist before the release: a foreign key without its constraint, as a bulk load
    with triggers off leaves."""
    with db.connect() as conn:
        name = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'security_securityevent'::regclass "
            "AND contype = 'f'"
        ).fetchone()[0]
        conn.execute(f'ALTER TABLE security_securityevent DROP CONSTRAINT "{name}"')
        conn.execute("UPDATE security_securityevent SET user_id = 999999 WHERE id IN "
                     f"(SELECT id FROM security_securityevent ORDER BY id LIMIT {rows})")


def wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def stderr_last(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.strip().splitlines()[-1]


def listing(db: Database) -> list[str]:
    directory = db.workdir / "backups"
    return sorted(os.listdir(directory)) if directory.exists() else []


def execute(db: Database, statement: str) -> None:
    with db.connect() as conn:
        conn.execute(statement)


def temp_files_of(db: Database, check: Any) -> tuple[Any, int]:
    """What `check` returns, and the temporary files the database's backends wrote meanwhile
    (pg_stat_database; backends report their statistics as they exit, so a moment is waited)."""
    query = "SELECT temp_files FROM pg_stat_database WHERE datname = current_database()"
    before = int(db.scalar(query))
    found = check()
    time.sleep(1.0)
    return found, int(db.scalar(query)) - before


def databases(db: Database, prefix: str) -> list[str]:
    return [r[0] for r in db.query("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))]


def flip_bytes(path: Path, at: float = 0.6, count: int = 8) -> None:
    """Invert `count` bytes at a fraction of the file (inside the compressed data)."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def resign(meta_path: Path, **changes) -> dict:
    """Change metadata keys and recompute its checksum, as a consistent (wrong) metadata would be."""
    raw = json.loads(meta_path.read_text())
    raw.update(changes)
    raw[metadata.CHECKSUM_KEY] = metadata.content_checksum(raw)
    meta_path.write_text(json.dumps(raw, indent=2))
    return raw


def backup_files(db: Database) -> tuple[Path, Path, Path]:
    """The one backup in the working directory: (dump, metadata, rollback script)."""
    dumps = sorted((db.workdir / "backups").glob("*.sql"))
    assert len(dumps) == 1, dumps
    dump = dumps[0]
    return dump, dump.with_suffix(".json"), metadata.script_path_for(dump, db.workdir / "rollback_scripts")


def take_backup(db: Database, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    result = db.script("backup", *args, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def error_line(result) -> str:
    """The last stderr line with its program prefix checked and replaced by PROG."""
    prefix, _, rest = stderr_last(result).partition(": ")
    assert prefix == ROLLBACK_PROG, stderr_last(result)
    return f"{ROLLBACK_PROG}: {rest}"


def change_after_backup(database: Database) -> None:
    """What a deploy does after the backup: a new table, changed rows, a recorded migration."""
    with database.connect() as conn:
        conn.execute("CREATE TABLE after_backup (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO after_backup VALUES (1, 'created after the backup')")
        conn.execute("DELETE FROM medguard_notifications_notification WHERE id IN "
                     "(SELECT id FROM medguard_notifications_notification ORDER BY id LIMIT 10)")
        conn.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('medications', "
                     "'0099_after_backup', now())")


def rollback_log_lines(database: Database) -> list[str]:
    return (database.workdir / "rollback.log").read_text().splitlines()


def fault_bin(tmp_path: Path, name: str, body: str, path: str | None = None) -> dict[str, str]:
    """A directory holding one wrapper executable `name` (REAL: the one on `path`, default PATH), and
    the env putting it first on that PATH."""
    directory = tmp_path / "fault bin"
    directory.mkdir(exist_ok=True)
    path = path or os.environ["PATH"]
    real = shutil.which(name, path=path)
    assert real
    script = directory / name
    script.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body.replace("REAL", real))
    script.chmod(0o755)
    return {"PATH": f"{directory}:{path}"}


def side_databases(database: Database) -> list[str]:
    """Databases a rollback of `database` created (restore copies, kept old databases)."""
    rows = database.query("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
                          (database.name + "\\_\\_%",))
    return [r[0] for r in rows]


def fingerprint(database: Database, dbname: str | None = None) -> dict[str, Any]:
    """Every table's full contents (md5 of its sorted rows), columns, indexes and constraints."""
    with database.connect(dbname) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        rows = {
            f"{s}.{t}": conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                f'FROM "{s}"."{t}" x'
            ).fetchone()
            for s, t in tables
        }
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                               "ORDER BY 1").fetchall()
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
    return {"rows": rows, "columns": columns, "indexes": indexes, "constraints": constraints}


def pg_dump_version() -> str:
    out = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[2]  # "pg_dump (PostgreSQL) 15.18 (Debian ...)" -> 15.18


def make_backup(database: Database, *, stamp: str | None = None) -> Path:
    """A backup per the kit's contract, made with the real pg_dump (custom format, -Z9)."""
    stamp = stamp or metadata.now_utc().strftime(metadata.TIMESTAMP_FORMAT)
    directory = metadata.ensure_private_dir(database.workdir / "backups")
    dump = directory / metadata.dump_name(BACKUP_PREFIX, stamp)
    env = {k: v for k, v in database.env.items()}
    env.update(PGHOST="127.0.0.1", PGPORT=str(database.server.port), PGUSER="postgres",
               PGPASSWORD=database.server.password, PGDATABASE=database.name)
    subprocess.run(["pg_dump", "-Fc", "-Z9", "-f", str(dump)], env=env, check=True)
    counts = {
        f"{s}.{t}": database.scalar(f'SELECT count(*) FROM "{s}"."{t}"')
        for s, t in database.query(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
    }
    toc = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
    meta = metadata.BackupMeta(
        created_at=metadata.iso(metadata.now_utc()),
        reason="manual",
        database=database.name,
        host="127.0.0.1",
        port=database.server.port,
        user="postgres",
        server_version=str(database.scalar("SHOW server_version")).split(" ")[0],
        server_version_num=int(database.scalar("SHOW server_version_num")),
        pg_dump_version=pg_dump_version(),
        file=dump.name,
        size_bytes=dump.stat().st_size,
        sha256=hashlib.sha256(dump.read_bytes()).hexdigest(),
        toc_entries=int(toc.stdout.split("TOC Entries: ", 1)[1].split()[0]),
        applied_migrations=sorted(database.applied()),
        row_counts=counts,
        django_alias="default",
        kit_profile="standard",
    )
    metadata.write(meta, metadata.meta_path_for(dump))
    return dump


@dataclass(frozen=True)
class Role:
    name: str
    password: str

    def __str__(self) -> str:
        return self.name


MakeRole = Callable[..., Role]  # the make_role fixture (conftest.py)


def run_as(db: Database, role: Role, *, tables: bool) -> None:
    """The kit runs as `role`, which owns the database (and its tables when `tables`)."""
    with db.connect("postgres") as conn:
        conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO {role}')
    if tables:
        with db.connect() as conn:
            tables_found = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            for (table,) in tables_found.fetchall():
                conn.execute(f'ALTER TABLE public."{table}" OWNER TO {role}')
    db.env.update(DB_USER=role.name, DB_PASSWORD=role.password)
