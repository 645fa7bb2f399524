"""One real PostgreSQL per test session, a seeded demo template, a fresh database per test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg_bin import ssl_bindir
from devtools.pg_server import HarnessError, Server, create_database, drop_database
from tests.support import EXAMPLE, TEMPLATE_DB, Database, MakeRole, Role, base_env, side_databases

# Two real servers of different majors: run where a second version's binaries are given
# (./run_tests.sh --smoke, which .ci/run calls, sets PG_BIN_OTHER); not collected elsewhere.
collect_ignore = [] if os.environ.get("PG_BIN_OTHER") else ["test_tool_versions.py"]


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("pg"), fast=True)
    try:
        server.start()
    except HarnessError as exc:
        pytest.exit(f"the test PostgreSQL did not start, nothing can be tested: {exc}", returncode=3)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def pg_ssl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second PostgreSQL, started once per session by the tests that ask for it: SSL on, with a
    CA, server and client certificates the suite made (devtools/pg_ssl.py); from a build with SSL
    (devtools.pg_bin.ssl_bindir: the PostgreSQL wheels have none)."""
    server = Server(tmp_path_factory.mktemp("pg_ssl"), fast=True, ssl=True, pg_bin=ssl_bindir())
    try:
        server.start()
    except RuntimeError as exc:  # HarnessError, or openssl failing
        pytest.exit(f"the test PostgreSQL with SSL did not start: {exc}", returncode=3)
    yield server
    server.destroy()


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


@pytest.fixture
def db(demo_db: Database) -> Iterator[Database]:
    """The demo database; databases a rollback kept beside it are dropped afterwards."""
    yield demo_db
    with demo_db.connect("postgres") as conn:
        for name in side_databases(demo_db):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_role(db: Database) -> Iterator[MakeRole]:
    """make_role(prefix, *attributes, login=True): a role named prefix_<random>, dropped afterwards
    with everything it owns (the side databases a rollback kept are dropped first)."""
    made: list[str] = []

    def make(prefix: str, *attributes: str, login: bool = True) -> Role:
        role = Role(f"{prefix}_{uuid.uuid4().hex[:8]}", "Pw-" + secrets.token_hex(8))
        with db.connect("postgres") as conn:
            conn.execute(f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'} NOSUPERUSER "
                         f"{' '.join(attributes)} PASSWORD '{role.password}'")
        made.append(role.name)
        return role

    yield make
    with db.connect("postgres") as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)",
                     (made,))
        for name in side_databases(db):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')
        conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO postgres')
    with db.connect() as conn:
        for name in made:
            conn.execute(f"REASSIGN OWNED BY {name} TO postgres")
            conn.execute(f"DROP OWNED BY {name}")
    with db.connect("postgres") as conn:
        for name in made:
            conn.execute(f"DROP ROLE {name}")
