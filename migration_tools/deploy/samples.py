"""What the monitor samples and how a sample reads: the machine (psutil) and the database.

The database side is the monitor's own connection, opened lazily and reopened after a loss;
failures are logged once when they start and once when they clear (`Faults`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psutil
import psycopg

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.redact import redact
from migration_tools.pg import databases, db

log = logging.getLogger("migration_kit")

STATEMENT_TIMEOUT = "500ms"


RECONNECT_TIMEOUT = 2  # seconds; libpq's connect_timeout is whole seconds


MB = 1024 * 1024


# Client connections to the target database other than the monitor's own (and the kit's progress
# display's), lock requests those backends are waiting for, and those per table, and the largest
# replay lag of the streaming replicas in seconds (NULL without replicas, or when the role may not
# read their positions; 0 when caught up: see pg/replication.py). One round trip.
DB_SAMPLE_SQL = """
SELECT
  (SELECT count(*) FROM pg_stat_activity
    WHERE datname = %(db)s AND backend_type = 'client backend'
      AND pid <> pg_backend_pid() AND application_name <> 'migration_kit:progress'),
  (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE NOT l.granted AND a.datname = %(db)s),
  (SELECT json_object_agg(rel, n) FROM (
     SELECT l.relation::regclass::text AS rel, count(*) AS n FROM pg_locks l
       JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE NOT l.granted AND l.locktype = 'relation' AND a.datname = %(db)s
        AND l.database = (SELECT oid FROM pg_database WHERE datname = %(db)s)
      GROUP BY 1) w),
  CASE WHEN NOT pg_is_in_recovery() THEN (
    SELECT max(CASE WHEN replay_lsn IS NULL THEN NULL WHEN replay_lsn < pg_current_wal_lsn()
                    THEN coalesce(extract(epoch FROM replay_lag), 0) ELSE 0 END)::float8
      FROM pg_stat_replication) END
"""


@dataclass(frozen=True)
class DbSample:
    connections: int
    lock_waits: int
    waits_by_table: dict[str, int] = field(default_factory=dict)
    replica_lag: float | None = None


@dataclass(frozen=True)
class Sample:
    at: datetime  # local time, as the seed's log lines show
    cpu: float
    mem: float
    disk: float
    read_bytes: int | None  # since the monitor started; None when the OS gives no I/O counters
    write_bytes: int | None
    db: DbSample | None  # None without params or when the database could not be sampled
    db_expected: bool = False
    utc: datetime | None = None  # the same moment in UTC, for the report's timeline

    def point(self) -> dict[str, Any]:
        """This sample on the report's timeline."""
        return {
            "at": (self.utc or self.at.astimezone(timezone.utc)).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "cpu": round(self.cpu, 1), "mem": round(self.mem, 1),
            "connections": None if self.db is None else self.db.connections,
            "lock_waits": None if self.db is None else self.db.lock_waits,
            "lock_waits_by_table": {} if self.db is None else dict(self.db.waits_by_table),
            "replica_lag_s": None if self.db is None else self.db.replica_lag,
        }

    def line(self) -> str:
        text = (
            f"[{self.at:%Y-%m-%d %H:%M:%S}] CPU: {self.cpu:.1f}%, MEM: {self.mem:.1f}%, "
            f"DISK: {self.disk:.1f}%"
        )
        if self.db is not None:
            text += f", DB_CONN: {self.db.connections}, LOCK_WAITS: {self.db.lock_waits}"
            if self.db.replica_lag is not None:
                text += f", REPLICA_LAG: {self.db.replica_lag:.1f}s"
        elif self.db_expected:
            text += ", DB: unavailable"
        if self.read_bytes is not None and self.write_bytes is not None:
            text += f", READ: {self.read_bytes / MB:.1f}MB, WRITE: {self.write_bytes / MB:.1f}MB"
        return text


def io_totals() -> tuple[int, int] | None:
    counters = psutil.disk_io_counters()
    return None if counters is None else (int(counters.read_bytes), int(counters.write_bytes))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class DbProbe:
    """The monitor's own connection: opened lazily, one reconnect attempt per sample after a loss.

    `aside`: connect to the maintenance database and watch the target from there (a rollback
    renames the target and ends its sessions: the monitor must not be one of them)."""

    def __init__(self, params: ConnParams, *, aside: bool = False) -> None:
        self.params = params
        self.aside = aside
        self.conn: psycopg.Connection[Any] | None = None
        self.ever_connected = False

    def sample(self) -> DbSample:
        if self.conn is None or self.conn.closed:
            self.conn = (databases.connect_maintenance(self.params, "monitor") if self.aside
                         else db.connect(self.params, purpose="monitor", timeout=RECONNECT_TIMEOUT))
            self.ever_connected = True  # opened: a failure from here on is a lost connection
            fresh = True
        else:
            fresh = False
        try:
            if fresh:
                self.conn.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
                self.conn.execute(f"SET lock_timeout = '{STATEMENT_TIMEOUT}'")
            row = self.conn.execute(DB_SAMPLE_SQL, {"db": self.params.dbname}).fetchone()
        except psycopg.Error:
            self.close()
            raise
        assert row is not None
        lag = None if row[3] is None else float(row[3])
        return DbSample(int(row[0]), int(row[1]), {str(k): int(v) for k, v in (row[2] or {}).items()}, lag)


    def server_version(self) -> str | None:
        """The server's version over the monitor's connection, once it is open."""
        if self.conn is None or self.conn.closed:
            return None
        try:
            return str(self.conn.execute("SHOW server_version").fetchone()[0]).split(" ")[0]  # type: ignore[index]
        except psycopg.Error:
            return None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None


class Faults:
    """Log each kind of failure once when it starts and once (INFO) when it clears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active: set[str] = set()
        self._messages: list[str] = []

    @property
    def messages(self) -> list[str]:
        with self._lock:
            return list(self._messages)

    def fail(self, kind: str, message: str) -> None:
        text = redact(message)
        with self._lock:
            if kind in self.active:
                return
            self.active.add(kind)
            self._messages.append(text)
        log.warning("monitor: %s", text)

    def clear(self, kind: str, message: str) -> None:
        with self._lock:
            if kind not in self.active:
                return
            self.active.discard(kind)
        log.info("monitor: %s", message)


def lock_and_lag_peaks(dbs: list[DbSample]) -> dict[str, Any]:
    """The report's peak lock waits and largest replica lag over the database samples."""
    lags = [d.replica_lag for d in dbs if d.replica_lag is not None]
    return {"peak_lock_waits": max(d.lock_waits for d in dbs) if dbs else None,
            "max_replica_lag_seconds": round(max(lags), 2) if lags else None}
