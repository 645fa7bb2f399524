"""MigrationMonitor against the real PostgreSQL and the real machine (psutil): lines, report, faults."""

from __future__ import annotations

import json
import logging
import re
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.pg_server import free_port
from migration_tools.core import audit
from migration_tools.core.djangoenv import ConnParams
from migration_tools.deploy.monitor import MigrationMonitor
from tests.support import Database, wait_for

INTERVAL = 0.1
LINE = re.compile(
    r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] CPU: \d{1,3}\.\d%, MEM: \d{1,3}\.\d%, DISK: \d{1,3}\.\d%"
    r"(?P<db>, DB_CONN: (?P<conn>\d+), LOCK_WAITS: (?P<waits>\d+)|, DB: unavailable)?"
    r"(, READ: \d+\.\dMB, WRITE: \d+\.\dMB)?$"
)
REPORT_NAME = re.compile(r"^report_\d{8}_\d{6}\.json$")
REPORT_KEYS = {
    "duration_seconds",
    "avg_cpu_usage",
    "max_cpu_usage",
    "avg_memory_usage",
    "max_memory_usage",
    "total_errors",
    "total_warnings",
    "peak_db_connections",
    "max_replica_lag_seconds",
    "disk_read_bytes",
    "disk_write_bytes",
    "peak_lock_waits",
    "samples",
    "interval_seconds",
    "migrations",
    "outcome",
    "started_at",
    "finished_at",
    "monitor_warnings", "run", "timeline",
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MONITOR_APP = "migration_kit:monitor"


def params_for(db: Database) -> ConnParams:
    return ConnParams(
        dbname=db.name,
        user=db.env["DB_USER"],
        host=db.env["DB_HOST"],
        port=int(db.env["DB_PORT"]),
        password=db.env["DB_PASSWORD"],
    )




def log_lines(monitor: MigrationMonitor) -> list[str]:
    if not monitor.log_path.exists():
        return []
    return monitor.log_path.read_text().splitlines()


def wait_lines(monitor: MigrationMonitor, count: int, match: Callable[[str], bool] = bool) -> list[str]:
    """Poll performance.log until `count` of its lines match; returns all its lines."""

    def enough() -> list[str] | None:
        lines = log_lines(monitor)
        return lines if sum(1 for ln in lines if match(ln)) >= count else None

    return wait_for(enough, f"{count} matching lines in {monitor.log_path}")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_report(monitor: MigrationMonitor) -> dict[str, Any]:
    assert monitor.report_path is not None
    return json.loads(monitor.report_path.read_text())


def monitor_pids(db: Database) -> list[int]:
    rows = db.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
        (MONITOR_APP, db.name),
    )
    return [r[0] for r in rows]


@pytest.fixture
def audit_log(tmp_path: Path) -> Iterator[Path]:
    """The kit's audit trail, as the CLI sets it up: records are written and counted."""
    path = tmp_path / "migration.log"
    logger = audit.setup(path, "migrate")
    yield path
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_lines_report_and_file_modes(empty_db: Database, tmp_path: Path, audit_log: Path) -> None:
    out = tmp_path / "migration_monitoring"
    shown: list[str] = []
    monitor = MigrationMonitor(out, params=params_for(empty_db), interval=INTERVAL, echo=shown.append)
    monitor.start_monitoring()
    wait_lines(monitor, 3)
    running = monitor.get_performance_report()
    assert running["finished_at"] is None and running["samples"] >= 3
    monitor.set_outcome("success")
    report = monitor.stop_monitoring()

    lines = log_lines(monitor)
    assert lines == shown
    for line in lines:
        match = LINE.match(line)
        assert match, line
        assert match.group("conn") is not None, line  # the database answered every sample
    assert set(report) == REPORT_KEYS
    assert read_report(monitor) == report
    assert monitor.report_path is not None and REPORT_NAME.match(monitor.report_path.name)
    assert monitor.report_path.parent == out
    assert report["samples"] == len(lines) >= 4
    assert report["max_cpu_usage"] >= report["avg_cpu_usage"] >= 0
    assert 100 >= report["max_memory_usage"] >= report["avg_memory_usage"] > 0
    assert report["duration_seconds"] > 0
    assert report["interval_seconds"] == INTERVAL
    assert report["outcome"] == "success"
    assert report["total_errors"] == 0 and report["total_warnings"] == 0
    assert report["monitor_warnings"] == []
    assert report["peak_lock_waits"] == 0
    assert report["peak_db_connections"] >= 0
    assert report["disk_read_bytes"] is None or report["disk_read_bytes"] >= 0
    assert ISO_UTC.match(report["started_at"]) and ISO_UTC.match(report["finished_at"])
    assert report["started_at"] <= report["finished_at"]
    assert mode(out) == 0o700
    assert mode(monitor.log_path) == 0o600
    assert mode(monitor.report_path) == 0o600
    wait_for(lambda: monitor_pids(empty_db) == [], "the monitoring connection to close at stop")
    secret = empty_db.env["DB_PASSWORD"]
    assert secret not in monitor.log_path.read_text() + monitor.report_path.read_text()


def test_peak_connections_counts_an_extra_connection(empty_db: Database, tmp_path: Path) -> None:
    monitor = MigrationMonitor(tmp_path / "mon", params=params_for(empty_db), interval=INTERVAL)
    with empty_db.connect():
        monitor.start_monitoring()
        wait_lines(monitor, 2, lambda ln: ", DB_CONN: " in ln)
        report = monitor.stop_monitoring()
    assert report["peak_db_connections"] >= 1
    conns = [int(m.group("conn")) for ln in log_lines(monitor) if (m := LINE.match(ln)) and m.group("conn")]
    assert max(conns) == report["peak_db_connections"]


def test_waiting_lock_is_counted(empty_db: Database, tmp_path: Path) -> None:
    with empty_db.connect() as conn:
        conn.execute("CREATE TABLE busy (id int)")
    monitor = MigrationMonitor(tmp_path / "mon", params=params_for(empty_db), interval=INTERVAL)
    holder = empty_db.connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    errors: list[BaseException] = []

    def blocked_reader() -> None:
        try:
            with empty_db.connect() as conn:
                conn.execute("SET lock_timeout = '60s'")
                conn.execute("SELECT count(*) FROM busy")
        except psycopg.Error as exc:
            errors.append(exc)

    reader = threading.Thread(target=blocked_reader, daemon=True)
    try:
        monitor.start_monitoring()
        reader.start()
        wait_lines(monitor, 1, lambda ln: ", LOCK_WAITS: 1" in ln)
    finally:
        holder.execute("COMMIT")
        holder.close()
        reader.join(30)
    report = monitor.stop_monitoring()
    assert errors == []
    assert report["peak_lock_waits"] == 1
    assert report["peak_db_connections"] >= 2


def test_migration_durations_are_recorded(tmp_path: Path) -> None:
    monitor = MigrationMonitor(tmp_path / "mon", interval=INTERVAL)
    monitor.start_monitoring()
    monitor.record_migration("medications.0002_add_dosage", 1.23456)
    monitor.record_migration("patients.0003_index", 0.5)
    monitor.set_outcome("rolled-back")
    report = monitor.stop_monitoring()
    assert report["migrations"] == [
        {"migration": "medications.0002_add_dosage", "seconds": 1.23},
        {"migration": "patients.0003_index", "seconds": 0.5},
    ]
    assert report["outcome"] == "rolled-back"
    assert read_report(monitor)["migrations"] == report["migrations"]


def test_without_database_the_lines_have_no_db_fields(tmp_path: Path) -> None:
    monitor = MigrationMonitor(tmp_path / "mon", interval=INTERVAL)
    monitor.start_monitoring()
    wait_lines(monitor, 2)
    report = monitor.stop_monitoring()
    for line in log_lines(monitor):
        match = LINE.match(line)
        assert match and match.group("db") is None, line
    assert report["peak_db_connections"] is None and report["peak_lock_waits"] is None
    assert report["samples"] >= 2
    assert report["outcome"] == "unknown"


def test_errors_and_warnings_are_counted_from_logged_records(tmp_path: Path, audit_log: Path) -> None:
    logger = logging.getLogger("migration_kit")
    logger.warning("before the monitor started: not counted")
    monitor = MigrationMonitor(tmp_path / "mon", interval=INTERVAL)
    monitor.start_monitoring()
    logger.error("migration medications.0002 failed")
    logger.warning("table medications_medication is large")
    logger.warning("lock wait on patients_patient")
    logger.info("applied medications.0001")
    report = monitor.stop_monitoring()
    assert report["total_errors"] == 1
    assert report["total_warnings"] == 2
    assert report["monitor_warnings"] == []


def test_monitor_survives_a_killed_monitoring_connection(
    empty_db: Database, tmp_path: Path, audit_log: Path
) -> None:
    monitor = MigrationMonitor(tmp_path / "mon", params=params_for(empty_db), interval=INTERVAL)
    monitor.start_monitoring()
    first = wait_for(lambda: monitor_pids(empty_db), "the monitoring connection")
    assert len(first) == 1
    killed = empty_db.scalar("SELECT pg_terminate_backend(%s)", (first[0],))
    assert killed is True
    wait_lines(monitor, 1, lambda ln: ln.endswith("DB: unavailable") or ", DB: unavailable," in ln)
    second = wait_for(lambda: [p for p in monitor_pids(empty_db) if p != first[0]], "a reconnection")
    assert len(second) == 1
    lines_before = len(log_lines(monitor))
    wait_for(lambda: len(log_lines(monitor)) >= lines_before + 2, "sampling to continue")
    report = monitor.stop_monitoring()

    lines = log_lines(monitor)
    lost_at = next(i for i, ln in enumerate(lines) if "DB: unavailable" in ln)
    assert any(", DB_CONN: " in ln for ln in lines[lost_at + 1 :])  # reconnected and sampled again
    assert all(LINE.match(ln) for ln in lines)
    assert report["total_warnings"] == 1
    assert len(report["monitor_warnings"]) == 1
    assert report["monitor_warnings"][0].startswith("monitoring connection lost: ")
    trail = audit_log.read_text()
    assert re.search(r" WARNING \[migrate\] user=\S+ monitor: monitoring connection lost: ", trail)
    assert re.search(r" INFO \[migrate\] user=\S+ monitor: monitoring connection restored", trail)
    assert empty_db.env["DB_PASSWORD"] not in trail + monitor.report_path.read_text()  # type: ignore[union-attr]


def test_unreachable_database_is_one_warning_and_sampling_goes_on(tmp_path: Path, audit_log: Path) -> None:
    nowhere = ConnParams("nodb", "postgres", "127.0.0.1", free_port(), "not-a-secret-pw")
    monitor = MigrationMonitor(tmp_path / "mon", params=nowhere, interval=INTERVAL)
    monitor.start_monitoring()
    wait_lines(monitor, 3)
    report = monitor.stop_monitoring()
    lines = log_lines(monitor)
    assert all(ln.startswith("[") and "DB: unavailable" in ln for ln in lines)
    assert report["samples"] == len(lines)
    assert report["peak_db_connections"] is None
    assert report["total_warnings"] == 1
    assert report["monitor_warnings"][0].startswith("cannot open the monitoring connection: ")
    assert "retrying on the next sample" in report["monitor_warnings"][0]
    assert audit_log.read_text().count("WARNING") == 1


def test_a_system_reading_failure_is_a_warning_not_a_crash(tmp_path: Path, audit_log: Path) -> None:
    """Remove the monitoring directory mid-run: psutil.disk_usage fails for real on every sample."""
    out = tmp_path / "mon"
    monitor = MigrationMonitor(out, interval=INTERVAL)
    monitor.start_monitoring()
    wait_lines(monitor, 1)
    shutil.rmtree(out)
    wait_for(lambda: monitor.get_performance_report()["monitor_warnings"], "a monitor warning")
    report = monitor.stop_monitoring()
    assert report["total_warnings"] == 1
    assert report["monitor_warnings"][0].startswith("cannot read system figures (psutil): ")
    assert monitor.report_path is not None and monitor.report_path.exists()  # the report still lands
    assert mode(out) == 0o700 and mode(monitor.report_path) == 0o600
    assert "WARNING" in audit_log.read_text()


def test_stop_without_start(tmp_path: Path) -> None:
    out = tmp_path / "never started"
    monitor = MigrationMonitor(out, interval=INTERVAL)
    report = monitor.stop_monitoring()
    assert set(report) == REPORT_KEYS
    assert report["samples"] == 1 and len(log_lines(monitor)) == 1
    assert LINE.match(log_lines(monitor)[0])
    assert monitor.report_path is not None and read_report(monitor) == report
    assert mode(out) == 0o700 and mode(monitor.report_path) == 0o600
    assert monitor.stop_monitoring() == report  # a second stop changes nothing
    assert [p.name for p in out.glob("report_*.json")] == [monitor.report_path.name]


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        MigrationMonitor(tmp_path, interval=0)
