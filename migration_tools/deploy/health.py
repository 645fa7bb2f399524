"""The running application's health URL, requested throughout a run and once after migrating.

The application's availability seen from outside: each request's status and time; a request
that fails, times out or answers another status than the expected one is a failure.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from migration_tools.core.errors import OperationFailed, prog_name
from migration_tools.core.kit_values import seconds, url
from migration_tools.core.redact import redact


@dataclass(frozen=True)
class HealthSettings:
    """MIGRATION_KIT's HEALTH_CHECK_URL (none: no check), HEALTH_CHECK_STATUS (200) and
    HEALTH_CHECK_TIMEOUT (seconds per request, 2)."""

    url: str = ""
    status: int = 200
    timeout: float = 2.0

    @classmethod
    def from_kit(cls, raw: dict[str, Any] | None) -> HealthSettings:
        raw = raw or {}
        return cls(url=url(raw, "HEALTH_CHECK_URL"),
                   status=int(seconds(raw, "HEALTH_CHECK_STATUS", cls.status, whole=True)),
                   timeout=seconds(raw, "HEALTH_CHECK_TIMEOUT", cls.timeout))

    def watch(self) -> HealthWatch | None:
        return HealthWatch(self.url, expect=self.status, timeout=self.timeout) if self.url else None

    def require_healthy(self, command: str) -> None:
        """A release does not start on an application that is already unhealthy: nothing would
        tell its failure from the release's."""
        if not self.url:
            return
        answer = request(self.url, expect=self.status, timeout=self.timeout)
        if not answer.ok:
            raise OperationFailed(
                "health-check-before",
                f"the application's health check fails before migrating: {self.url} answered "
                f"{answer.detail}; nothing was changed",
                f"make the application healthy (or fix MIGRATION_KIT's HEALTH_CHECK_URL), then run "
                f"{prog_name()} {command} again")


@dataclass(frozen=True)
class Answer:
    ok: bool
    detail: str  # "HTTP 200", "HTTP 503", "unreachable: ..." or "timed out after 2.0s"
    ms: float


def request(url: str, *, expect: int = 200, timeout: float = 2.0) -> Answer:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except TimeoutError:
        return Answer(False, f"timed out after {timeout:g}s", (time.monotonic() - started) * 1000)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return Answer(False, f"timed out after {timeout:g}s", (time.monotonic() - started) * 1000)
        return Answer(False, f"unreachable: {redact(str(reason))}", (time.monotonic() - started) * 1000)
    ms = (time.monotonic() - started) * 1000
    detail = f"HTTP {status}" + ("" if status == expect else f", expected {expect}")
    return Answer(status == expect, detail, ms)


class HealthWatch:
    """Requests the URL every `interval` seconds in a background thread until `stop()`."""

    def __init__(self, url: str, *, expect: int = 200, timeout: float = 2.0, interval: float = 1.0) -> None:
        self.url, self.expect, self.timeout, self.interval = url, expect, timeout, interval
        self.checks = self.failures = 0
        self.slowest_ms = 0.0
        self.first_failure = ""
        self.after_migration = "not checked"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record(request(self.url, expect=self.expect, timeout=self.timeout))
            self._stop.wait(self.interval)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.checks += 1
            self.slowest_ms = max(self.slowest_ms, answer.ms)
            if not answer.ok:
                self.failures += 1
                self.first_failure = self.first_failure or answer.detail

    def check_after(self) -> None:
        """The check after migrating: raises when it fails, so the deploy is undone."""
        answer = request(self.url, expect=self.expect, timeout=self.timeout)
        self._record(answer)
        with self._lock:
            self.after_migration = "ok" if answer.ok else f"failed: {answer.detail}"
        if not answer.ok:
            raise OperationFailed(
                "health-check", f"the application's health check failed after migrating: {self.url} "
                f"answered {answer.detail}", f"see {prog_name()} status and the application's logs")

    def section(self) -> dict[str, Any]:
        with self._lock:
            return {"health": {"url": redact(self.url), "checks": self.checks, "failures": self.failures,
                               "slowest_ms": round(self.slowest_ms, 1), "first_failure": self.first_failure,
                               "after_migration": self.after_migration}}
