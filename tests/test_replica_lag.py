"""zero-downtime waits for a lagging streaming replica: a real replica made with pg_basebackup,
its replay paused with pg_wal_replay_pause() (the fault: a replica that stopped keeping up)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg_replica import Replica
from devtools.pg_server import Server
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import OperationFailed
from migration_tools.zerodowntime.replica_gate import ReplicaGate
from tests.support import Database, wait_for

REPLICA_SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.replica_settings"}


@pytest.fixture
def replica(pg: Server) -> Iterator[Replica]:
    made = Replica(pg)
    made.start()
    yield made
    made.destroy()


def test_zero_downtime_waits_while_the_replica_lags(db: Database, replica: Replica):
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    with db.connect() as conn:  # WAL the paused replica does not replay
        conn.execute("CREATE TABLE lag_marker AS SELECT generate_series(1, 1000) AS n")
    time.sleep(2.0)

    def resume() -> None:
        with replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    timer = threading.Timer(4.0, resume)
    timer.start()
    try:
        result = db.script("zero-downtime", "--phase", "pre", "--no-backup", "--interval", "0.5",
                           env=REPLICA_SETTINGS)
    finally:
        timer.join()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    waiting = next(line for line in lines if line.startswith("Waiting for the replica: "))
    assert "above the 1s limit" in waiting and "replay lag " in waiting
    assert any(line.startswith("The replica caught up after ") for line in lines)
    report = json.loads(sorted((db.workdir / "migration_monitoring").glob("report_*.json"))[-1].read_text())
    assert report["replica_wait_s"] >= 0.5 and report["max_replica_lag_s"] > 1
    assert report["replica_waits"][0]["waited_s"] == report["replica_wait_s"]
    assert "waited " in lines[-1] and "for a lagging replica" in lines[-1]
    sampled = [line for line in lines if ", REPLICA_LAG: " in line]  # the monitor's sample lines
    assert sampled and report["max_replica_lag_seconds"] > 1


def test_a_replica_that_never_catches_up_fails_the_run_and_it_is_undone(db: Database, replica: Replica,
                                                                       tmp_path: Path):
    before = db.applied()
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    with db.connect() as conn:
        conn.execute("CREATE TABLE lag_marker AS SELECT generate_series(1, 1000) AS n")
    time.sleep(2.0)
    settings = tmp_path / "short_wait_settings.py"
    settings.write_text("from tests.fixtures.replica_settings import *  # noqa: F403\n"
                        "MIGRATION_KIT = {**MIGRATION_KIT, 'REPLICA_WAIT_MAX': 3}  # noqa: F405\n")
    env = {"DJANGO_SETTINGS_MODULE": "short_wait_settings",
           "PYTHONPATH": f"{tmp_path}:{db.env['PYTHONPATH']}"}
    result = db.script("zero-downtime", "--phase", "pre", "--no-backup", "--no-monitor", env=env)
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
    assert result.returncode == 3, result.stderr
    assert "a replica stayed more than 1s behind for 3s" in result.stderr
    assert "[zero-downtime-rolled-back]" in result.stderr
    assert db.applied() == before


def test_an_undo_does_not_wait_for_a_lagging_replica(db: Database, replica: Replica):
    """The gate holds statements back while the paused replica lags, but not the statements of an
    undo: reversing a failed run must not leave the database half-migrated longer."""
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    gate = ReplicaGate(ConnParams(db.name, "postgres", "127.0.0.1", db.server.port, db.server.password),
                       limit=1, max_wait=1)
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE lag_marker AS SELECT generate_series(1, 1000) AS n")

        def held_back() -> bool:  # the replica's reported lag grows past the limit within seconds
            try:
                gate.wait()
            except OperationFailed as exc:
                assert "a replica stayed more than 1s behind for 1s" in exc.message
                return True
            return False

        wait_for(held_back, "the gate to hold a statement back", timeout=30)
        started = time.monotonic()
        with gate.aside():
            gate.wait()
        assert time.monotonic() - started < 0.5
        with pytest.raises(OperationFailed):  # and holds statements back again afterwards
            gate.wait()
    finally:
        gate.close()
        with replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
