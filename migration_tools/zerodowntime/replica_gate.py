"""Between statements, wait while a streaming replica lags more than the limit.

An index build or a table rewrite floods the WAL; a replica that falls far behind serves stale
reads and, on failover, loses time. Before each statement that locks or rewrites, the gate reads
pg_stat_replication on its own connection; while the largest replay lag is above the limit it
says so once, writes a commit record every poll (so a paused replica's lag keeps being
measured), and waits, up to `max_wait` seconds in all, after which the statement fails the run
(and the run is undone).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.pg import db, replication

log = logging.getLogger("migration_kit")
POLL_S = 1.0
NUDGE_S = 0.1  # a replica answers new WAL within milliseconds


class ReplicaGate:
    def __init__(self, params: ConnParams, *, limit: float, max_wait: float,
                 say: Callable[[str], None] = lambda text: None) -> None:
        self.params, self.limit, self.max_wait, self.say = params, limit, max_wait, say
        self.waited = 0.0
        self.max_lag = 0.0
        self.waits: list[dict[str, Any]] = []
        self.unknown = ""
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self.standing_aside = False  # during an undo: reversing the run must not wait on a replica

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """While an undo runs, statements go on without waiting: a replica that lags is no reason to
        leave the database half-migrated longer (its lag is still measured by the monitor)."""
        self.standing_aside = True
        try:
            yield
        finally:
            self.standing_aside = False

    def _largest(self) -> replication.Replica | None:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.params, purpose="replicas", timeout=2)
        found = replication.largest_lag(replication.replicas(self._conn))
        if found is not None and 0 < (found.lag_seconds or 0.0) <= self.limit:
            # Behind, by a time the replica last reported: make it report now, then read again.
            replication.nudge(self._conn)
            time.sleep(NUDGE_S)
            found = replication.largest_lag(replication.replicas(self._conn))
        if found is None and not self.unknown:
            everyone = replication.replicas(self._conn)
            if everyone:
                self.unknown = everyone[0].describe()
                log.warning("replica lag not watched: %s", self.unknown)
        if found is not None:
            with self._lock:
                self.max_lag = max(self.max_lag, found.lag_seconds or 0.0)
        return found

    def wait(self) -> None:
        """Return once every replica is within the limit; raise after `max_wait` seconds of waiting."""
        if self.standing_aside:
            return
        try:
            largest = self._largest()
        except (KitError, psycopg.Error) as exc:
            log.warning("cannot read pg_stat_replication: %s", exc)
            return
        if largest is None or (largest.lag_seconds or 0.0) <= self.limit:
            return
        started = time.monotonic()
        first = largest.describe()
        self.say(f"Waiting for the replica: {first}, above the {self.limit:g}s limit")
        log.warning("pausing: %s above the %gs limit", first, self.limit)
        while largest is not None and (largest.lag_seconds or 0.0) > self.limit:
            if time.monotonic() - started > self.max_wait:
                self._record(started, first)
                raise OperationFailed(
                    "replica-lag",
                    f"a replica stayed more than {self.limit:g}s behind for {self.max_wait:g}s "
                    f"({largest.describe()})",
                    "check the replica (is its replay paused?), then run again")
            time.sleep(POLL_S)
            assert self._conn is not None
            replication.nudge(self._conn)
            largest = self._largest()
        self._record(started, first)
        self.say(f"The replica caught up after {time.monotonic() - started:.1f}s; going on")

    def _record(self, started: float, first: str) -> None:
        seconds = time.monotonic() - started
        with self._lock:
            self.waited += seconds
            self.waits.append({"replica": first, "waited_s": round(seconds, 1)})

    def section(self) -> dict[str, Any]:
        with self._lock:
            return {"replica_lag_limit_s": self.limit, "max_replica_lag_s": round(self.max_lag, 2),
                    "replica_wait_s": round(self.waited, 1), "replica_waits": list(self.waits),
                    **({"replica_lag_unknown": self.unknown} if self.unknown else {})}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
