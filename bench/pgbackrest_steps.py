"""The steps of bench_pgbackrest.py on one BackrestServer (devtools/pg_backrest.py): each a whole
process (or, for the plain restores, the few processes an operator would run), timed by Steps."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scale_common import DEMO_SETTINGS, REPO, Steps, kit_env, pg_env, psql, run, seed, write_settings
from devtools.pg_backrest import STANZA, BackrestServer
from devtools.pg_server import create_database

DB = "bench_br"
JOBS = 2
# "A release that touched one table", twice: before the plain incremental and before the kit's, so that
# each copies the same kind of change (an incremental covers what changed since the previous backup).
RELEASES = ("UPDATE medications_doselog SET notes = 'release 2' WHERE id % 10 = 0",
            "UPDATE medications_doselog SET notes = 'release 3' WHERE id % 10 = 5")
RELEASED = "SELECT count(*) FROM medications_doselog WHERE notes IN ('release 2', 'release 3')"


@dataclass
class Measured:
    steps: Steps = field(default_factory=Steps)
    seed_seconds: float = 0.0
    rows: int = 0
    db_size: int = 0
    released_rows: int = 0
    doselog_bytes: int = 0  # pg_total_relation_size of the touched table after the release
    sizes: dict[str, int] = field(default_factory=dict)
    backups: dict[str, dict[str, Any]] = field(default_factory=dict)  # step key -> pgbackrest info entry
    kit_said: dict[str, str] = field(default_factory=dict)  # step key -> the kit's own timing line
    rollback_out: str = ""
    server_version: str = ""


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def info(server: BackrestServer) -> list[dict[str, Any]]:
    out = run([*server.pgbackrest(), f"--stanza={STANZA}", "--output=json", "info"])
    stanzas: list[dict[str, Any]] = json.loads(out)
    return list(stanzas[0].get("backup", [])) if stanzas else []


class Bench:
    def __init__(self, server: BackrestServer, root: Path) -> None:
        self.server, self.root = server, root
        self.m = Measured()
        extra = root / "settings"
        br = server.kit_settings()
        modules = {kind: write_settings(extra, f"bench_br_{kind}", {
            "BACKUP_FORMAT": "pgbackrest", "PGBACKREST": {**br, "BACKUP_TYPE": kind}})
            for kind in ("full", "incr")}
        self.work = root / "work"
        self.work.mkdir()
        self.env = {kind: kit_env(server, DB, self.work, module, extra) for kind, module in modules.items()}
        self.demo_env = kit_env(server, DB, self.work, DEMO_SETTINGS, extra)
        self.pg = pg_env(server, DB)
        self.dump, self.dump_dir = root / "plain.dump", root / "plain.dir"

    def pgbackrest(self, *args: str) -> list[str]:
        return [*self.server.pgbackrest(), f"--stanza={STANZA}", *args]

    def seed(self, scale: int) -> None:
        create_database(self.server, DB)
        self.m.seed_seconds = seed(self.server, DB, scale, self.demo_env, self.root)
        self.m.db_size = int(psql(self.server, f"SELECT pg_database_size('{DB}')"))
        self.m.rows = int(psql(self.server, "SELECT sum(n_live_tup) FROM pg_stat_user_tables", DB))
        self.m.server_version = psql(self.server, "SHOW server_version")

    def plain_backup(self, key: str, kind: str) -> None:
        before = {b["label"] for b in info(self.server)}
        self.m.steps.run(key, self.pgbackrest(f"--type={kind}", "backup"))
        (self.m.backups[key],) = [b for b in info(self.server) if b["label"] not in before]

    def kit_backup(self, key: str, kind: str) -> str:
        """The kit's backup; the restore point's name."""
        out = self.m.steps.run(key, [str(REPO / "production_migrate.sh"), "backup"], self.env[kind],
                               self.work)
        found = re.search(r"^Restore point: (\S+) at LSN", out, re.MULTILINE)
        said = re.search(r"^Duration: (.+)$", out, re.MULTILINE)
        if not found:
            raise SystemExit(f"bench: no restore point in the kit's output:\n{out}")
        self.m.kit_said[key] = said.group(1) if said else ""
        meta = json.loads((self.work / "backups" / f"{found.group(1)}.json").read_text())
        (self.m.backups[key],) = [b for b in info(self.server) if b["label"] == meta["backup_label"]]
        return found.group(1)

    def backups(self) -> tuple[str, str]:
        """Every backup; the kit's full backup's label and restore point (the release's rollback target)."""
        steps = self.m.steps
        steps.run("backup pg_dump -Fc", ["pg_dump", "-Fc", "-Z9", "-f", str(self.dump)], self.pg, self.root)
        steps.run("backup pg_dump -Fd", ["pg_dump", "-Fd", "-Z9", f"-j{JOBS}", "-f", str(self.dump_dir)],
                  self.pg, self.root)
        self.m.sizes |= {"dump file": size_of(self.dump), "dump directory": size_of(self.dump_dir)}
        self.plain_backup("backup pgbackrest full", "full")
        point = self.kit_backup("backup kit full", "full")
        with steps.timing("release 1"):
            psql(self.server, RELEASES[0], DB)
        self.plain_backup("backup pgbackrest incr", "incr")
        with steps.timing("release 2"):
            psql(self.server, RELEASES[1], DB)
        self.kit_backup("backup kit incr", "incr")
        self.m.released_rows = int(psql(self.server, RELEASED, DB))
        size = "SELECT pg_total_relation_size('medications_doselog')"
        self.m.doselog_bytes = int(psql(self.server, size, DB))
        return self.m.backups["backup kit full"]["label"], point

    def restores(self, label: str, point: str) -> None:
        steps, server = self.m.steps, self.server
        psql(server, "DROP DATABASE IF EXISTS bench_restored")
        with steps.timing("restore pg_restore"):
            psql(server, "CREATE DATABASE bench_restored")
            run(["pg_restore", f"-j{JOBS}", "-d", "bench_restored", str(self.dump)],
                pg_env(server, "bench_restored"), self.root)
        psql(server, "DROP DATABASE bench_restored")
        psql(server, "CHECKPOINT")
        rollback = [sys.executable, str(REPO / "rollback_manager.py"), "rollback", point, "--yes"]
        out = steps.run("restore kit", rollback, self.env["incr"], self.work)
        self.m.rollback_out = out
        said = re.search(r"rolled back to restore point \S+ in (\S+s)", out)
        self.m.kit_said["restore kit"] = said.group(1) if said else ""
        self.check_rolled_back("the kit's rollback")
        # The same releases again, so the plain restore starts from the same kind of state.
        for release in RELEASES:
            psql(server, release, DB)
        psql(server, "CHECKPOINT")
        with steps.timing("restore pgbackrest"):
            run(server.server_command("stop"))
            run(self.pgbackrest("--delta", f"--set={label}", "--type=name", f"--target={point}",
                                "--target-timeline=current", "--target-action=promote", "restore"))
            run(server.server_command("start"))
            wait_promoted(server)
        self.check_rolled_back("the plain pgBackRest restore")

    def check_rolled_back(self, what: str) -> None:
        left = int(psql(self.server, RELEASED, DB))
        if left != 0:
            raise SystemExit(f"bench: after {what}, {left} rows still carry the release's change")

    def repository(self) -> None:
        repo = self.server.home / "repo"
        self.m.sizes["WAL archive"] = size_of(repo / "archive")
        self.m.sizes["repository"] = size_of(repo)


def wait_promoted(server: BackrestServer, timeout: float = 600.0) -> None:
    """Until the restored server accepts connections and has left recovery (as the kit's wait_up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(["psql", "-Atc", "SELECT pg_is_in_recovery()"], env=pg_env(server),
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == "f":
            return
        time.sleep(0.2)
    raise SystemExit(f"bench: the restored server was not up and promoted within {timeout:g}s")


def measure(scale: int, root: Path) -> Measured:
    server = BackrestServer(root / "pg", fast=False)
    try:
        server.start()
        bench = Bench(server, root)
        bench.seed(scale)
        label, point = bench.backups()
        bench.restores(label, point)
        bench.repository()
        return bench.m
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
