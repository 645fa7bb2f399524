"""A throwaway PostgreSQL whose WAL is archived by a real pgBackRest into a repository on local disk.

For the pgBackRest tier's tests and benchmark. The cluster is a devtools.pg_server.Server with
archive_mode on and `archive_command = pgbackrest ... archive-push %p`; a Unix socket in a
directory only the server's OS user can enter (pgBackRest talks to PostgreSQL over a local socket,
`trust` there, scram over TCP as before); a pgbackrest.conf with the repository, the lock
directory and the stanza; `stanza-create` run. `kit_settings()` is the MIGRATION_KIT["PGBACKREST"]
dict an operator would write for it: pgBackRest run as the server's OS user, and the commands
that stop and start the server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.pg_bin import debian_bindir
from devtools.pg_server import HarnessError, Server, _as_user

STANZA = "kit"


def pgbackrest_binary() -> str:
    found = shutil.which("pgbackrest")
    if not found:
        raise HarnessError("pgbackrest is not installed; run ./run_tests.sh (it installs it as root) or "
                           "apt-get install pgbackrest")
    return found


@dataclass
class BackrestServer(Server):
    """`Server` plus a pgBackRest stanza; start() configures and creates the stanza once.

    Always Debian's PostgreSQL build (devtools.pg_bin.debian_bindir), whatever the matrix row: the
    pgBackRest Debian ships here (2.45) predates PostgreSQL 16 and is not tested against it.
    """

    def __post_init__(self) -> None:
        if self.pg_bin is None:
            self.pg_bin = debian_bindir()

    @property
    def home(self) -> Path:
        return self.datadir.parent / "pgbackrest"

    @property
    def config(self) -> Path:
        return self.home / "pgbackrest.conf"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    def _own(self, *paths: Path) -> None:
        user = self.os_user
        if user:
            entry = pwd.getpwnam(user)
            for path in paths:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def pgbackrest(self) -> list[str]:
        """pgBackRest's argv prefix: run as the server's OS user, with this cluster's config."""
        return _as_user(self.os_user, [pgbackrest_binary(), f"--config={self.config}"])

    def init(self) -> None:
        fresh = not (self.datadir / "PG_VERSION").exists()
        super().init()
        if not fresh:
            return
        for path in (self.home, self.home / "repo", self.home / "lock", self.home / "log", self.socket_dir):
            path.mkdir(mode=0o700, exist_ok=True)
            self._own(path)
        archive = " ".join([pgbackrest_binary(), f"--config={self.config}", f"--stanza={STANZA}",
                            "archive-push", "%p"])
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as handle:
            handle.write(
                "\n# pgBackRest\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "wal_level = replica\narchive_mode = on\n"
                f"archive_command = '{archive}'\n"
                "max_wal_senders = 4\n"
            )
        hba = self.datadir / "pg_hba.conf"
        hba.write_text("local all postgres trust\n" + hba.read_text())

    def _write_config(self) -> None:
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.home / 'repo'}\n"
            f"lock-path={self.home / 'lock'}\n"
            f"log-path={self.home / 'log'}\n"
            "log-level-console=warn\nlog-level-file=off\n"
            "compress-type=lz4\nstart-fast=y\n"
            "process-max=2\n"
            f"\n[{STANZA}]\n"
            f"pg1-path={self.datadir}\n"
            f"pg1-port={self.port}\n"
            f"pg1-socket-path={self.socket_dir}\n"
            "pg1-user=postgres\n"
        )
        os.chmod(self.config, 0o600)
        self._own(self.config)

    def start(self) -> None:
        fresh = not (self.datadir / "PG_VERSION").exists()
        super().start()
        self._write_config()
        if fresh or not (self.home / "repo" / "backup" / STANZA).exists():
            done = subprocess.run([*self.pgbackrest(), f"--stanza={STANZA}", "stanza-create"],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                said = done.stderr.strip() or done.stdout.strip()
                raise HarnessError(f"pgbackrest stanza-create failed: {said}")

    def server_command(self, action: str) -> list[str]:
        """The stop or start command an operator would configure (pg_ctl as the server's user)."""
        pg_ctl = str(self.bindir / "pg_ctl")
        if action == "stop":
            return _as_user(self.os_user, [pg_ctl, "stop", "-D", str(self.datadir), "-m", "fast", "-w",
                                           "-t", "120"])
        return _as_user(self.os_user, [pg_ctl, "start", "-D", str(self.datadir), "-w", "-t", "600",
                                       "-l", str(self.datadir / "server.log"), "-o", f"-p {self.port}"])

    def side_start_command(self) -> list[str]:
        """The side-copy start command template ({datadir} and {port} filled in by the kit)."""
        return _as_user(self.os_user, [str(self.bindir / "pg_ctl"), "start", "-D", "{datadir}", "-w", "-t",
                                       "600", "-l", "{datadir}/server.log", "-o",
                                       "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="])

    def kit_settings(self, *, commands: bool = True) -> dict[str, Any]:
        settings: dict[str, Any] = {"STANZA": STANZA, "COMMAND": self.pgbackrest()}
        if commands:
            settings |= {
                "SERVER_STOP_COMMAND": self.server_command("stop"),
                "SERVER_START_COMMAND": self.server_command("start"),
                "SIDE_START_COMMAND": self.side_start_command(),
            }
        return settings

    def stop_datadir(self, datadir: Path) -> None:
        """Stop a side copy started from `datadir`, if it runs."""
        if (datadir / "postmaster.pid").exists():
            pg_ctl = [str(self.bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate", "-w"]
            subprocess.run(_as_user(self.os_user, pg_ctl), capture_output=True, check=False)

    def side_owner_dir(self, name: str) -> Path:
        """An empty directory the server's OS user owns, for a side copy's data directory."""
        path = self.home / name
        path.mkdir(mode=0o700)
        self._own(path)
        return path
