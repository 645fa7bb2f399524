"""Streaming replicas as the primary sees them (pg_stat_replication): how far behind each replays.

A replica is behind when its replay position is before the primary's WAL position; its lag in
time is pg_stat_replication.replay_lag, which PostgreSQL updates as the replica reports back (it
keeps growing while replay is paused and WAL flows). Caught up means lag 0, whatever
replay_lag still shows. The LSN columns are NULL for a role without pg_monitor: lag unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

REPLICAS_SQL = """
SELECT application_name, coalesce(host(client_addr), 'local'), replay_lsn IS NOT NULL,
       coalesce(replay_lsn < pg_current_wal_lsn(), false),
       extract(epoch FROM replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
  FROM pg_stat_replication ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Replica:
    name: str
    address: str
    lag_seconds: float | None  # None: the role may not read the replica's positions
    lag_bytes: int | None

    def describe(self) -> str:
        if self.lag_seconds is None:
            return f"{self.name}@{self.address}: lag unknown (the role lacks pg_monitor)"
        behind = f"{self.lag_bytes or 0:,} bytes"
        return f"{self.name}@{self.address}: replay lag {self.lag_seconds:.1f}s ({behind})"


def replicas(conn: psycopg.Connection[Any]) -> list[Replica]:
    found = []
    for name, address, visible, behind, lag, lag_bytes in conn.execute(REPLICAS_SQL).fetchall():
        if not visible:
            found.append(Replica(str(name), str(address), None, None))
        elif not behind:
            found.append(Replica(str(name), str(address), 0.0, 0))
        else:
            found.append(Replica(str(name), str(address), float(lag or 0.0), int(lag_bytes or 0)))
    return found


def largest_lag(found: list[Replica]) -> Replica | None:
    known = [r for r in found if r.lag_seconds is not None]
    return max(known, key=lambda r: r.lag_seconds or 0.0) if known else None


def nudge(conn: psycopg.Connection[Any]) -> None:
    """Write one commit record, so a paused replica's lag keeps being measured while we wait."""
    conn.execute("SELECT pg_current_xact_id()")
