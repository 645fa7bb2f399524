"""zero-downtime's knobs: MIGRATION_KIT keys, overridden by the command's options.

  LOCK_TIMEOUT          seconds a statement that blocks the application may wait for its lock (2)
  STATEMENT_TIMEOUT     seconds such a statement may run once it holds the lock (60)
  LOCK_TRIES            tries of a statement whose lock wait timed out, the first included (5)
  RETRY_DELAY           seconds before the first retry; doubled per try, with jitter (0.5)
  PROBE_INTERVAL        seconds between two availability probes of a table (0.1)
  REPLICA_LAG_LIMIT     seconds a streaming replica may lag before the next statement waits (10)
  REPLICA_WAIT_MAX      seconds to wait for it in all before the run fails and is undone (600)
  HEALTH_CHECK_URL      the running application's health URL (none: no health check)
  HEALTH_CHECK_STATUS   the status it answers when healthy (200)
  HEALTH_CHECK_TIMEOUT  seconds one request may take (2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from migration_tools.core.errors import BadInput


@dataclass(frozen=True)
class ZeroDowntimeSettings:
    lock_timeout: float = 2.0
    statement_timeout: float = 60.0
    tries: int = 5
    retry_delay: float = 0.5
    probe_interval: float = 0.1
    replica_lag_limit: float = 10.0
    replica_wait_max: float = 600.0
    health_url: str = ""
    health_status: int = 200
    health_timeout: float = 2.0

    @classmethod
    def from_kit(cls, raw: dict[str, Any] | None, **overrides: Any) -> ZeroDowntimeSettings:
        raw = raw or {}
        found = cls(
            lock_timeout=_seconds(raw, "LOCK_TIMEOUT", cls.lock_timeout),
            statement_timeout=_seconds(raw, "STATEMENT_TIMEOUT", cls.statement_timeout),
            tries=int(_seconds(raw, "LOCK_TRIES", cls.tries, whole=True)),
            retry_delay=_seconds(raw, "RETRY_DELAY", cls.retry_delay),
            probe_interval=_seconds(raw, "PROBE_INTERVAL", cls.probe_interval),
            replica_lag_limit=_seconds(raw, "REPLICA_LAG_LIMIT", cls.replica_lag_limit),
            replica_wait_max=_seconds(raw, "REPLICA_WAIT_MAX", cls.replica_wait_max),
            health_url=_url(raw.get("HEALTH_CHECK_URL")),
            health_status=int(_seconds(raw, "HEALTH_CHECK_STATUS", cls.health_status, whole=True)),
            health_timeout=_seconds(raw, "HEALTH_CHECK_TIMEOUT", cls.health_timeout),
        )
        return replace(found, **{k: v for k, v in overrides.items() if v is not None})

    def pg_interval(self, seconds: float) -> str:
        """A PostgreSQL interval of whole milliseconds, for SET lock_timeout / statement_timeout."""
        return f"{max(1, round(seconds * 1000))}ms"


def _bad(key: str, value: Any, want: str) -> BadInput:
    return BadInput("zero-downtime-settings", f"MIGRATION_KIT['{key}'] is {value!r}, not {want}",
                    "fix it in the settings module, then run the command again")


def _seconds(raw: dict[str, Any], key: str, default: float, *, whole: bool = False) -> float:
    value = raw.get(key)
    if value is None:
        return default
    want = "a whole number of at least 1" if whole else "a positive number of seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, value, want)
    if not math.isfinite(value) or value <= 0 or (whole and (value != int(value) or value < 1)):
        raise _bad(key, value, want)
    return float(value)


def _url(value: Any) -> str:
    if value is None or value == "":
        return ""
    parts = urlsplit(str(value)) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad("HEALTH_CHECK_URL", value, "an http:// or https:// URL")
    return str(value)
