"""A throwaway PostgreSQL on loopback for the demo, the tests and the benchmarks.

Finds binaries (devtools/pg_bin.py: `pg_bin`, else PG_BIN, else the newest
/usr/lib/postgresql/*/bin, else the pgserver wheel), initialises a cluster with scram password
authentication (the password reaches initdb through a temporary pwfile, never argv), starts it
on a free loopback port and stops it. PostgreSQL refuses to run as root, so as root the server
runs as an unprivileged OS user (a wheel's binaries it cannot reach are copied where it can).

Its command line is devtools/throwaway_pg.py.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import pg_ssl
from devtools.pg_bin import HarnessError, find_bindir, runnable_bindir
from devtools.pg_bin import can_traverse as _can_traverse

SUPERUSER = "postgres"
FALLBACK_OS_USER = "migkit"


def _os_user() -> str | None:
    """The unprivileged user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
        check=True,
    )
    return FALLBACK_OS_USER


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A cluster under `root`: root/state.json, root/password (0600) and the data directory;
    with `ssl`, SSL on and root/ssl holding the client's certificate files (devtools/pg_ssl.py)."""

    root: Path
    fast: bool = False
    ssl: bool = False
    pg_bin: Path | None = None

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def _state(self) -> dict[str, str]:
        if self.state_file.exists():
            return dict(json.loads(self.state_file.read_text()))
        return {}

    def _save_state(self, **values: str) -> None:
        state = self._state() | values
        self.state_file.write_text(json.dumps(state, indent=2))
        os.chmod(self.state_file, 0o600)

    @property
    def datadir(self) -> Path:
        return Path(self._state().get("datadir") or self.root / "data")

    @property
    def bindir(self) -> Path:
        return Path(self._state().get("bindir") or self.pg_bin or find_bindir())

    @property
    def port(self) -> int:
        return int(self._state().get("port") or 0)

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def os_user(self) -> str | None:
        return _os_user()

    def env(self, dbname: str = "postgres") -> dict[str, str]:
        return {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.port),
            "DB_USER": SUPERUSER,
            "DB_PASSWORD": self.password,
            "DB_NAME": dbname,
        }

    def is_running(self) -> bool:
        if not (self.datadir / "PG_VERSION").exists():
            return False
        status = subprocess.run(
            _as_user(self.os_user, [str(self.bindir / "pg_ctl"), "status", "-D", str(self.datadir)]),
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def _choose_datadir(self, user: str | None) -> Path:
        inside = (self.root / "data").resolve()
        if user is None or _can_traverse(user, self.root):
            return inside
        # The checkout is not reachable by the unprivileged user (e.g. under /root): keep the
        # cluster in /tmp, recorded in state.json so stop/start find it again.
        outside = Path(tempfile.mkdtemp(prefix="migration-kit-pg-"))
        os.chmod(outside, 0o711)
        return outside / "data"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700 if self.os_user is None else 0o711)
        if (self.datadir / "PG_VERSION").exists():
            return
        user = self.os_user
        bindir = runnable_bindir(self.pg_bin or find_bindir(), user)
        datadir = self._choose_datadir(user)
        datadir.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(18) + "\n")
        pw_dir = Path(tempfile.mkdtemp(prefix="pgkit-pw-"))
        pwfile = pw_dir / "pw"
        try:
            pwfile.write_text(self.password + "\n")
            os.chmod(pwfile, 0o600)
            if user:
                uid = pwd.getpwnam(user).pw_uid
                gid = pwd.getpwnam(user).pw_gid
                for path in (pw_dir, pwfile, datadir):
                    os.chown(path, uid, gid)
            os.chmod(datadir, 0o700)
            initdb = [
                str(bindir / "initdb"),
                "-D", str(datadir),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E", "UTF8",
                "--locale=C",
            ]
            if self.fast:
                initdb.append("--no-sync")
            result = subprocess.run(_as_user(user, initdb), capture_output=True, text=True, check=False)
        finally:
            shutil.rmtree(pw_dir, ignore_errors=True)
        if result.returncode != 0:
            raise HarnessError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        conf = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 100",
            "log_min_messages = warning",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        if self.ssl:
            conf += pg_ssl.enable(datadir, user, self.root)
        with open(datadir / "postgresql.conf", "a", encoding="utf-8") as handle:
            handle.write("\n# migration kit throwaway server\n" + "\n".join(conf) + "\n")
        self._save_state(datadir=str(datadir), bindir=str(bindir))

    def start(self) -> None:
        self.init()
        if self.is_running():
            return
        port = free_port()
        self._save_state(port=str(port))
        result = subprocess.run(
            _as_user(
                self.os_user,
                [
                    str(self.bindir / "pg_ctl"),
                    "start",
                    "-D", str(self.datadir),
                    "-l", str(self.datadir / "server.log"),
                    "-w", "-t", "60",
                    "-o", f"-p {port}",
                ],
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            log = self.datadir / "server.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise HarnessError(f"PostgreSQL did not start: {result.stderr.strip()} {tail}")

    def stop(self) -> None:
        if not self.is_running():
            return
        pg_ctl = [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w"]
        subprocess.run(_as_user(self.os_user, pg_ctl), capture_output=True, check=True)

    def destroy(self) -> None:
        self.stop()
        datadir = self.datadir
        shutil.rmtree(datadir, ignore_errors=True)
        if datadir.parent.name.startswith("migration-kit-pg-"):
            shutil.rmtree(datadir.parent, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

def _admin_connect(server: Server) -> Any:
    import psycopg

    return psycopg.connect(
        host="127.0.0.1",
        port=server.port,
        user=SUPERUSER,
        password=server.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
        application_name="throwaway_pg",
    )


def create_database(server: Server, name: str, template: str | None = None) -> bool:
    """Create `name` (from `template`) unless it exists; True when it was created."""
    from psycopg import sql

    with _admin_connect(server) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(query)
        return True


def drop_database(server: Server, name: str) -> None:
    from psycopg import sql

    with _admin_connect(server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
