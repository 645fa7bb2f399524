"""A streaming replica of a throwaway server: pg_basebackup into a second data directory, started
on another loopback port, replaying the primary's WAL. For the tests of the replica-lag pause."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from typing import Any

from devtools.pg_server import HarnessError, Server, _as_user, free_port


class Replica:
    def __init__(self, primary: Server) -> None:
        self.primary = primary
        self.datadir = primary.datadir.parent / (primary.datadir.name + "_replica")
        self.port = 0

    def _run(self, argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(_as_user(self.primary.os_user, argv), env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise HarnessError(f"{what} failed: {done.stderr.strip()}")

    def start(self) -> None:
        bindir, user = self.primary.bindir, self.primary.os_user
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.datadir.mkdir(mode=0o700)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        self._run([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U",
                   "postgres", "-D", str(self.datadir), "-R", "-X", "stream", "--no-sync", "-c", "fast"],
                  "pg_basebackup", env=os.environ | {"PGPASSWORD": self.primary.password})
        self.port = free_port()
        self._run([str(bindir / "pg_ctl"), "start", "-D", str(self.datadir), "-w", "-t", "60",
                   "-l", str(self.datadir / "server.log"), "-o", f"-p {self.port}"], "starting the replica")

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               password=self.primary.password, dbname="postgres", autocommit=True)

    def destroy(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            stop = ["stop", "-D", str(self.datadir), "-m", "immediate", "-w"]
            self._run([str(self.primary.bindir / "pg_ctl"), *stop], "stopping the replica")
        shutil.rmtree(self.datadir, ignore_errors=True)
