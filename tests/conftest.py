"""One real PostgreSQL per test session, a seeded demo template, a fresh database per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migration_tools.throwaway_pg import HarnessError, Server, create_database, drop_database

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example"
TEMPLATE_DB = "demo_template"
SETTINGS = "medguard_backend.settings.production"


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("pg"), fast=True)
    try:
        server.start()
    except HarnessError as exc:
        pytest.exit(f"the test PostgreSQL did not start, nothing can be tested: {exc}", returncode=3)
    yield server
    server.destroy()


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


@pytest.fixture(scope="session")
def demo_template(pg: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    create_database(pg, TEMPLATE_DB)
    workdir = tmp_path_factory.mktemp("seed")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), "seed_demo"],
        env=base_env(pg, TEMPLATE_DB, workdir),
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.exit(f"seed_demo failed on the template database: {result.stderr}", returncode=3)
    return TEMPLATE_DB


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


@pytest.fixture
def demo_db(pg: Server, demo_template: str, tmp_path: Path) -> Iterator[Database]:
    """A copy of the seeded demo database at its released state."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    create_database(pg, name, template=demo_template)
    workdir = tmp_path / "work dir"  # a space on purpose: quoting bugs show up here
    workdir.mkdir()
    yield Database(pg, name, workdir, base_env(pg, name, workdir))
    drop_database(pg, name)


@pytest.fixture
def empty_db(pg: Server, tmp_path: Path) -> Iterator[Database]:
    name = f"e_{uuid.uuid4().hex[:10]}"
    create_database(pg, name)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    yield Database(pg, name, workdir, base_env(pg, name, workdir))
    drop_database(pg, name)
