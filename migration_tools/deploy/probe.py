"""How long the application would wait to read and to write each table the plan touches.

Two connections per table, each probing at least every `interval` seconds: in a transaction with
its own lock_timeout, one takes `LOCK TABLE ... IN ACCESS SHARE MODE` (what a SELECT takes), the
other `IN ROW EXCLUSIVE MODE` (what INSERT, UPDATE and DELETE take), then ROLLBACK. It changes no data;
the time each lock took to be granted is the stall the application's query would have had. A
probe that times out, or whose connection fails, is a probe failure, never a clean sample.

The four statements go to the server as one message, so the probe holds its lock only while the
server runs them: never while this process waits for its turn on the CPU. A lock held across round
trips would make the migration's own DDL wait, and the application's queries queue behind the DDL.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError
from migration_tools.pg import db

PROBE_LOCK_TIMEOUT_S = 10.0
MODES = (("read", "ACCESS SHARE"), ("write", "ROW EXCLUSIVE"))


@dataclass
class TableStalls:
    read_ms: float | None = None
    write_ms: float | None = None
    failures: int = 0
    probes: int = 0
    absent: bool = False
    denied: set[str] = field(default_factory=set)  # "read" / "write": the role may not take that lock
    buckets: dict[int, list[float]] = field(default_factory=dict)  # whole second -> [read, write]

    def add(self, second: int, what: str, ms: float) -> None:
        self.probes += 1
        worst = self.buckets.setdefault(second, [0.0, 0.0])
        if what == "read":
            self.read_ms = max(self.read_ms or 0.0, ms)
            worst[0] = max(worst[0], ms)
        else:
            self.write_ms = max(self.write_ms or 0.0, ms)
            worst[1] = max(worst[1], ms)


class _Denied(Exception):
    """The role lacks the privilege to take the probe's lock on this table."""


class AvailabilityProbe:
    """Background threads probing `tables` (as Django names them) until `stop()`."""

    def __init__(self, params: ConnParams, tables: list[str], *, interval: float = 0.1,
                 lock_timeout: float = PROBE_LOCK_TIMEOUT_S) -> None:
        self.params = params
        self.interval = interval
        self.lock_timeout = lock_timeout
        self.tables = {table: TableStalls() for table in dict.fromkeys(tables)}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = time.time()

    def start(self) -> None:
        self._started = time.time()
        for table in self.tables:
            for what, mode in MODES:
                thread = threading.Thread(target=self._run, args=(table, what, mode), daemon=True,
                                          name=f"probe-{what}-{table}")
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.lock_timeout + 5)

    def __enter__(self) -> AvailabilityProbe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, table: str, what: str, mode: str) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    conn = conn or db.connect(self.params, purpose="probe", timeout=2)
                    self._probe(conn, table, what, mode)
                except _Denied:
                    return
                except (KitError, psycopg.Error):
                    with self._lock:
                        self.tables[table].failures += 1
                    if conn is not None:
                        with contextlib.suppress(psycopg.Error):
                            conn.close()
                        conn = None
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        finally:
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()

    def _probe(self, conn: psycopg.Connection[Any], table: str, what: str, mode: str) -> None:
        timed_out = 0
        statement = sql.SQL("BEGIN; SET LOCAL lock_timeout = {}; LOCK TABLE {} IN {} MODE; ROLLBACK").format(
            sql.Literal(f"{round(self.lock_timeout * 1000)}ms"), sql.Identifier(table), sql.SQL(mode))
        started = time.monotonic()
        try:
            conn.execute(statement, prepare=False)  # no parameters: one simple-protocol message
        except psycopg.errors.UndefinedTable:
            _end_failed_transaction(conn)
            with self._lock:
                self.tables[table].absent = True  # not created yet, or dropped: nothing waits
            return
        except psycopg.errors.InsufficientPrivilege:
            _end_failed_transaction(conn)
            with self._lock:
                self.tables[table].denied.add(what)  # the role may not take this lock: not measured
            raise _Denied from None
        except psycopg.errors.LockNotAvailable:
            timed_out = 1  # waited the whole probe timeout: a stall at least that long
        waited = (time.monotonic() - started) * 1000
        _end_failed_transaction(conn)
        with self._lock:
            entry = self.tables[table]
            entry.absent = False
            entry.failures += timed_out
            entry.add(int(time.time() - self._started), what, waited)

    def section(self) -> dict[str, Any]:
        """The report's keys: overall and per-table longest stalls, failures, a per-second timeline."""
        with self._lock:
            tables = {name: entry for name, entry in self.tables.items()}
            by_table = {
                name: {"max_read_stall_ms": _ms(e.read_ms), "max_write_stall_ms": _ms(e.write_ms),
                       "probe_failures": e.failures, "probes": e.probes,
                       **({"not_measured": sorted(e.denied)} if e.denied else {})}
                for name, e in tables.items()
            }
            timeline = [
                {"at": _iso(self._started + second), "table": name,
                 "read_ms": round(worst[0], 1), "write_ms": round(worst[1], 1)}
                for name, e in tables.items() for second, worst in sorted(e.buckets.items())
            ]
        reads = [e.read_ms for e in tables.values() if e.read_ms is not None]
        writes = [e.write_ms for e in tables.values() if e.write_ms is not None]
        return {
            "max_read_stall_ms": _ms(max(reads)) if reads else None,
            "max_write_stall_ms": _ms(max(writes)) if writes else None,
            "probe_failures": sum(e.failures for e in tables.values()),
            "stalls_by_table": by_table,
            "stall_timeline": sorted(timeline, key=lambda point: (point["at"], point["table"])),
        }


def _end_failed_transaction(conn: psycopg.Connection[Any]) -> None:
    """A statement of the message failed: the server skipped the rest, ROLLBACK included."""
    if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        conn.execute("ROLLBACK")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def summary_line(section: dict[str, Any], lock_retries: int | None = None) -> str:
    """The one line the terminal shows after the run."""
    def ms(value: float | None) -> str:
        return "not measured" if value is None else f"{value:,.0f} ms"

    tables = len(section.get("stalls_by_table", {}))
    retries = "" if lock_retries is None else f", {lock_retries} lock wait(s) timed out and retried"
    return (f"Application stalls measured on {tables} table(s): "
            f"longest read {ms(section['max_read_stall_ms'])}, "
            f"longest write {ms(section['max_write_stall_ms'])}, {section['probe_failures']} failed probe(s)"
            f"{retries}")
