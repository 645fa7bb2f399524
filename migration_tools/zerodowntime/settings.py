"""zero-downtime's knobs: MIGRATION_KIT keys, overridden by the command's options.

  LOCK_TIMEOUT          seconds a statement that blocks the application may wait for its lock (2)
  STATEMENT_TIMEOUT     seconds such a statement may run once it holds the lock (60)
  LOCK_TRIES            tries of a statement whose lock wait timed out, the first included (5)
  RETRY_DELAY           seconds before the first retry; doubled per try, with jitter (0.5)
  PROBE_INTERVAL        seconds between two availability probes of a table (0.1)
  REPLICA_LAG_LIMIT     seconds a streaming replica may lag before the next statement waits (10)
  REPLICA_WAIT_MAX      seconds to wait for it in all before the run fails and is undone (600)
  INDEX_BUILD_MEMORY    megabytes of maintenance_work_mem a concurrent index build may be given so that
                        its validation never stalls a writer (1024; 0: leave the server's setting)
  HEALTH_CHECK_URL, HEALTH_CHECK_STATUS, HEALTH_CHECK_TIMEOUT: deploy/health.py (full-deploy's too)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from migration_tools.core.kit_values import megabytes, seconds
from migration_tools.deploy.health import HealthSettings


@dataclass(frozen=True)
class ZeroDowntimeSettings:
    lock_timeout: float = 2.0
    statement_timeout: float = 60.0
    tries: int = 5
    retry_delay: float = 0.5
    probe_interval: float = 0.1
    replica_lag_limit: float = 10.0
    replica_wait_max: float = 600.0
    index_build_memory: float = 1024.0
    health: HealthSettings = field(default_factory=HealthSettings)

    @classmethod
    def from_kit(cls, raw: dict[str, Any] | None, **overrides: Any) -> ZeroDowntimeSettings:
        raw = raw or {}
        found = cls(
            lock_timeout=seconds(raw, "LOCK_TIMEOUT", cls.lock_timeout),
            statement_timeout=seconds(raw, "STATEMENT_TIMEOUT", cls.statement_timeout),
            tries=int(seconds(raw, "LOCK_TRIES", cls.tries, whole=True)),
            retry_delay=seconds(raw, "RETRY_DELAY", cls.retry_delay),
            probe_interval=seconds(raw, "PROBE_INTERVAL", cls.probe_interval),
            replica_lag_limit=seconds(raw, "REPLICA_LAG_LIMIT", cls.replica_lag_limit),
            replica_wait_max=seconds(raw, "REPLICA_WAIT_MAX", cls.replica_wait_max),
            index_build_memory=megabytes(raw, "INDEX_BUILD_MEMORY", cls.index_build_memory),
            health=HealthSettings.from_kit(raw),
        )
        return replace(found, **{k: v for k, v in overrides.items() if v is not None})

    def pg_interval(self, value: float) -> str:
        """A PostgreSQL interval of whole milliseconds, for SET lock_timeout / statement_timeout."""
        return f"{max(1, round(value * 1000))}ms"
