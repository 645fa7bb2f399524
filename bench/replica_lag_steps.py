"""The runs of bench_replica_lag.py: the demo's release by `zero-downtime` on fresh copies of a seeded
database, on a primary with a real streaming replica (devtools/pg_replica.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.scale_common import DEMO_SETTINGS, REPO, kit_env, psql, seed, write_settings
from devtools.pg_replica import Replica
from devtools.pg_server import Server, create_database

TEMPLATE = "lag_template"
PAUSE_S = 10.0  # how long the replica's replay is paused in the "paused" runs, from just before the start
LIMITS = {"off": 100000, "1s": 1}
RUNS = [("off", False), ("1s", False), ("off", True), ("1s", True)]  # (REPLICA_LAG_LIMIT, replay paused)
LAG_SQL = """
SELECT coalesce(max(CASE WHEN replay_lsn < pg_current_wal_lsn()
                         THEN extract(epoch FROM replay_lag) ELSE 0 END), 0)::float8,
       coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint
  FROM pg_stat_replication
"""


@dataclass
class Run:
    limit: str
    paused: bool
    seconds: float = 0.0
    load: float = 0.0
    wal_bytes: int = 0
    sampled_lag_s: float = 0.0  # this bench's own 0.25-s sampler (as the kit computes it)
    sampled_lag_bytes: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    said: list[str] = field(default_factory=list)  # the kit's lines about the replica, and its verdict
    sample_lines: int = 0


@dataclass
class Measured:
    seed_seconds: float = 0.0
    replica_seconds: float = 0.0
    rows: int = 0
    db_size: int = 0
    server_version: str = ""
    runs: list[Run] = field(default_factory=list)


def conninfo(server: Server) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": server.port, "user": "postgres", "password": server.password,
            "dbname": "postgres", "autocommit": True}


class Sampler(threading.Thread):
    """The largest replay lag (seconds, bytes) on the primary every 0.25 s while the release runs."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(**conninfo(server))
        self.halt = threading.Event()
        self.lag_s, self.lag_bytes = 0.0, 0

    def run(self) -> None:
        while not self.halt.wait(0.25):
            row = self.conn.execute(LAG_SQL).fetchone()
            if row:
                self.lag_s, self.lag_bytes = max(self.lag_s, float(row[0])), max(self.lag_bytes, int(row[1]))

    def finish(self) -> None:
        self.halt.set()
        self.join()
        self.conn.close()


def wait_caught_up(server: Server, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(**conninfo(server)) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FILTER (WHERE replay_lsn >= pg_current_wal_lsn()), count(*) "
                               "FROM pg_stat_replication").fetchone()
            if row and row[1] == 1 and row[0] == 1:
                return
            time.sleep(0.2)
    raise SystemExit(f"bench: the replica did not catch up within {timeout:g}s")


def current_lsn(server: Server) -> str:
    return psql(server, "SELECT pg_current_wal_lsn()")


def one_run(server: Server, replica: Replica, run: Run, number: int, root: Path, extra: Path) -> None:
    db = f"lag_run_{number}"
    psql(server, f"CREATE DATABASE {db} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    wait_caught_up(server)
    work = root / db
    work.mkdir()
    env = kit_env(server, db, work, f"bench_lag_{run.limit.replace('1s', 'one')}", extra)
    argv = [str(REPO / "production_migrate.sh"), "zero-downtime", "--allow-unsafe", "--no-backup",
            "--monitor", "--interval", "1"]
    timer: threading.Timer | None = None
    if run.paused:
        with replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        psql(server, "SELECT pg_current_xact_id()")  # a commit record the paused replica does not replay

        def resume() -> None:
            with replica.connect() as conn:
                conn.execute("SELECT pg_wal_replay_resume()")

        timer = threading.Timer(PAUSE_S, resume)
        timer.start()
    start_lsn = current_lsn(server)
    sampler = Sampler(server)
    sampler.start()
    try:
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, check=False)
        run.seconds = time.perf_counter() - start
        run.load = os.getloadavg()[0]
    finally:
        sampler.finish()
        if timer is not None:
            timer.join()
    if done.returncode != 0:
        raise SystemExit(f"bench: zero-downtime failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                         f"{done.stderr[-3000:]}")
    run.wal_bytes = int(psql(server, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}')"))
    run.sampled_lag_s, run.sampled_lag_bytes = sampler.lag_s, sampler.lag_bytes
    reports = sorted((work / "migration_monitoring").glob("report_*.json"))
    run.report = json.loads(reports[-1].read_text())
    lines = done.stdout.splitlines()
    run.said = [line for line in lines if re.match(r"(Waiting for the replica|The replica caught up)", line)]
    run.said.append(lines[-1] if lines else "")
    run.sample_lines = sum(1 for line in lines if ", REPLICA_LAG: " in line)
    print(f"run {number} limit {run.limit} paused {run.paused}: {run.seconds:.1f}s, monitor max lag "
          f"{run.report.get('max_replica_lag_seconds')}, waited {run.report.get('replica_wait_s')}",
          flush=True)
    psql(server, f"DROP DATABASE {db} WITH (FORCE)")


def measure(scale: int, root: Path) -> Measured:
    m = Measured()
    server = Server(root / "pg", fast=False)
    replica: Replica | None = None
    try:
        server.start()
        extra = root / "settings"
        for name, limit in LIMITS.items():
            write_settings(extra, f"bench_lag_{name.replace('1s', 'one')}",
                           {"REPLICA_LAG_LIMIT": limit, "REPLICA_WAIT_MAX": 300})
        create_database(server, TEMPLATE)
        m.seed_seconds = seed(server, TEMPLATE, scale, kit_env(server, TEMPLATE, root, DEMO_SETTINGS, extra),
                              root)
        m.rows = int(psql(server, "SELECT sum(n_live_tup) FROM pg_stat_user_tables", TEMPLATE))
        m.db_size = int(psql(server, f"SELECT pg_database_size('{TEMPLATE}')"))
        m.server_version = psql(server, "SHOW server_version")
        started = time.perf_counter()
        replica = Replica(server)
        replica.start()
        m.replica_seconds = time.perf_counter() - started
        for number, (limit, paused) in enumerate(RUNS, 1):
            run = Run(limit, paused)
            one_run(server, replica, run, number, root, extra)
            m.runs.append(run)
        return m
    finally:
        if replica is not None:
            replica.destroy()
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)
