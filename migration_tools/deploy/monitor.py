"""MigrationMonitor: a background thread sampling the machine and the database during a migration.

Each sample is one line in `<out_dir>/performance.log`, starting exactly as the seed shows:
`[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%`. `stop_monitoring()` writes
`<out_dir>/report_<UTC timestamp>.json` and its page `report_<UTC timestamp>.html` (migration_tools/
report). While it runs the monitor keeps the run's timeline (core/timeline.py): the steps with
their start, end and outcome, and the warnings and errors logged; the report adds them, each
sample with its time, and the run's header (`run`). The monitor never raises into the migration:
a failure (psutil, the monitoring connection, the log file, the page) is logged once as a WARNING
on the "migration_kit" logger, counted, and retried on later samples.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from migration_tools.core import audit, timeline
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError
from migration_tools.deploy import run_report, samples

DEFAULT_INTERVAL = 5.0
LOG_NAME = "performance.log"
CPU_WINDOW = 0.1  # the first sample's CPU figure covers at least this long
JOIN_TIMEOUT = 10.0

log = logging.getLogger("migration_kit")


class MigrationMonitor:
    """Real-time monitoring of migration performance and system resources."""

    def __init__(
        self,
        out_dir: Path,
        *,
        params: ConnParams | None = None,
        interval: float = DEFAULT_INTERVAL,
        echo: Callable[[str], None] | None = None,
        command: str = "",
        html: bool = True,
        aside: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.out_dir = Path(out_dir)
        self.log_path = self.out_dir / LOG_NAME
        self.interval = float(interval)
        self.echo = echo
        self.report_path: Path | None = None
        self.html_path: Path | None = None
        self._html = html
        self._ending: dict[str, Any] = {"exit_code": None, "verdict": None}
        self._header = run_report.header(params, command, None)
        self._recorder: timeline.Recorder | None = None
        self._probe = samples.DbProbe(params, aside=aside) if params is not None else None
        self._faults = samples.Faults()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[samples.Sample] = []
        self._migrations: list[dict[str, Any]] = []
        self._outcome = "unknown"
        self._report: dict[str, Any] | None = None
        self._sections: dict[str, Callable[[], dict[str, Any]]] = {}
        self.sample_cpu_seconds: list[float] = []  # thread CPU time spent per sample (the bench reads it)
        self._io_start: tuple[int, int] | None = None
        self._errors_start = self._warnings_start = 0
        self._started_mono = time.monotonic()
        self._started_at = samples.utc_now()
        self._finished_mono: float | None = None
        self._finished_at: datetime | None = None
        self._begin()

    # -- public API ---------------------------------------------------------------------------

    def start_monitoring(self) -> None:
        """Start the daemon sampling thread; the first sample is taken at once."""
        if self._thread is not None or self._report is not None:
            return
        self._begin()
        self._recorder = timeline.activate()
        self._prepare_dir()
        self._thread = threading.Thread(target=self._run, name="migration-monitor", daemon=True)
        self._thread.start()

    def stop_monitoring(self) -> dict[str, Any]:
        """Stop, take a last sample, write the report file and return the report."""
        if self._report is not None:
            return self._report
        thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                self._faults.fail("stop", f"the sampling thread did not stop within {JOIN_TIMEOUT:.0f}s")
        else:
            self._prepare_dir()
            self._sample_once()
        if self._probe is not None:
            self._header["postgresql_version"] = self._probe.server_version()
        if self._probe is not None and (thread is None or not thread.is_alive()):
            self._probe.close()
        self._finished_mono = time.monotonic()
        self._finished_at = samples.utc_now()
        report = self.get_performance_report()
        if self._recorder is not None:
            timeline.deactivate(self._recorder)
        try:
            self.report_path = run_report.write_json(self.out_dir, report, self._finished_at)
        except OSError as exc:
            self._faults.fail("report", f"cannot write the report in {self.out_dir}: {exc}")
            report = self.get_performance_report()
        if self.report_path is not None and self._html:
            try:
                self.html_path = run_report.write_html(self.report_path, report)
            except Exception as exc:  # the page must never fail the run its JSON reports
                self._faults.fail("html", f"cannot write the HTML report: {type(exc).__name__}: {exc}")
        self._report = report
        return report

    def get_performance_report(self) -> dict[str, Any]:
        """The report so far; works while the monitor runs."""
        with self._lock:
            taken = list(self._samples)
            migrations = [dict(m) for m in self._migrations]
            outcome = self._outcome
        warnings = self._faults.messages
        cpu = [s.cpu for s in taken]
        mem = [s.mem for s in taken]
        dbs = [s.db for s in taken if s.db is not None]
        last_io = next((s for s in reversed(taken) if s.read_bytes is not None), None)
        end = self._finished_mono if self._finished_mono is not None else time.monotonic()
        errors, warns = self._logged_counts()
        return {
            "duration_seconds": round(end - self._started_mono, 2),
            "avg_cpu_usage": round(sum(cpu) / len(cpu), 1) if cpu else 0.0,
            "max_cpu_usage": round(max(cpu), 1) if cpu else 0.0,
            "avg_memory_usage": round(sum(mem) / len(mem), 1) if mem else 0.0,
            "max_memory_usage": round(max(mem), 1) if mem else 0.0,
            "total_errors": errors,
            "total_warnings": warns,
            "peak_db_connections": max(d.connections for d in dbs) if dbs else None,
            "disk_read_bytes": last_io.read_bytes if last_io else None,
            "disk_write_bytes": last_io.write_bytes if last_io else None,
            **samples.lock_and_lag_peaks(dbs),
            "samples": len(taken),
            "interval_seconds": self.interval,
            "migrations": migrations,
            "outcome": outcome,
            "started_at": samples.iso(self._started_at),
            "finished_at": samples.iso(self._finished_at),
            "monitor_warnings": warnings,
            "run": {**self._header, **self._ending},
            "timeline": {"samples": [s.point() for s in taken], **self._recorded()},
            **{key: value for provider in self._sections.values() for key, value in provider().items()},
        }

    def add_section(self, name: str, provider: Callable[[], dict[str, Any]]) -> None:
        """Merge the keys of `provider()` into the report (e.g. the availability probe's figures)."""
        self._sections[name] = provider

    def record_migration(self, label: str, seconds: float) -> None:
        with self._lock:
            self._migrations.append({"migration": label, "seconds": round(float(seconds), 2)})

    def set_outcome(self, outcome: str) -> None:
        with self._lock:
            self._outcome = outcome

    def finish(self, *, exit_code: int, verdict: str) -> None:
        """How the command ended, for the report's header (call before stop_monitoring)."""
        with self._lock:
            self._ending = {"exit_code": exit_code, "verdict": verdict}

    def _recorded(self) -> dict[str, Any]:
        if self._recorder is None:
            return {"steps": [], "messages": []}
        return self._recorder.snapshot()

    # -- sampling -----------------------------------------------------------------------------

    def _begin(self) -> None:
        """Baselines: CPU counters for this thread, disk I/O, the logged-record counts, the clock."""
        psutil.cpu_percent(interval=None)
        try:
            self._io_start = samples.io_totals()
        except (psutil.Error, OSError):
            self._io_start = None
        self._errors_start = audit.counter.errors
        self._warnings_start = audit.counter.warnings
        self._started_mono = time.monotonic()
        self._started_at = samples.utc_now()

    def _run(self) -> None:
        psutil.cpu_percent(interval=None)  # cpu_percent keeps its baseline per thread
        self._stop.wait(min(CPU_WINDOW, self.interval))
        next_due = time.monotonic()
        while True:
            self._sample_once()
            next_due += self.interval
            now = time.monotonic()
            if next_due < now:  # a slow sample: skip the missed slots rather than bunch up
                next_due = now + self.interval
            if self._stop.wait(next_due - now):
                self._sample_once()  # the last sample, in this thread so its CPU baseline holds
                return

    def _sample_once(self) -> None:
        started = time.thread_time()
        try:
            sample = self._take_sample()
            if sample is not None:
                self._publish(sample)
        except Exception as exc:  # the monitor must never take the migration down
            self._faults.fail("sample", f"sampling failed: {type(exc).__name__}: {exc}")
        finally:
            self.sample_cpu_seconds.append(time.thread_time() - started)

    def _take_sample(self) -> samples.Sample | None:
        try:
            cpu = psutil.cpu_percent(interval=None)
            mem = psutil.virtual_memory().percent
            disk = psutil.disk_usage(str(self.out_dir)).percent
            io_now = samples.io_totals()
        except (psutil.Error, OSError) as exc:
            self._faults.fail("system", f"cannot read system figures (psutil): {exc}")
            return None
        self._faults.clear("system", "system figures readable again")
        read = write = None
        if io_now is not None and self._io_start is not None:
            read = max(0, io_now[0] - self._io_start[0])
            write = max(0, io_now[1] - self._io_start[1])
        utc = samples.utc_now()
        return samples.Sample(
            at=utc.astimezone(),
            utc=utc,
            cpu=float(cpu),
            mem=float(mem),
            disk=float(disk),
            read_bytes=read,
            write_bytes=write,
            db=self._db_sample(),
            db_expected=self._probe is not None,
        )

    def _db_sample(self) -> samples.DbSample | None:
        if self._probe is None:
            return None
        try:
            result = self._probe.sample()
        except (KitError, psycopg.Error) as exc:
            text = exc.message if isinstance(exc, KitError) else str(exc).strip()
            lost = self._probe.ever_connected  # read after the failure: opened by this sample, then lost
            what = "monitoring connection lost" if lost else "cannot open the monitoring connection"
            self._faults.fail("db", f"{what}: {text}; retrying on the next sample")
            return None
        self._faults.clear("db", "monitoring connection restored")
        return result

    def _publish(self, sample: samples.Sample) -> None:
        line = sample.line()
        try:
            run_report.append_line(self.log_path, line)
        except OSError as exc:
            self._faults.fail("log", f"cannot write {self.log_path}: {exc}")
        else:
            self._faults.clear("log", f"writing {self.log_path} again")
        with self._lock:
            self._samples.append(sample)
        if self.echo is not None:
            try:
                self.echo(line)
            except Exception as exc:  # a closed terminal must not stop the sampling
                self._faults.fail("echo", f"cannot show the sample line: {exc}")

    # -- files --------------------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        try:
            run_report.prepare_dir(self.out_dir, self.log_path)
        except OSError as exc:
            self._faults.fail("log", f"cannot prepare {self.out_dir}: {exc}")

    def _logged_counts(self) -> tuple[int, int]:
        """Errors and warnings the run logged since the start; the monitor's own failures count."""
        errors = audit.counter.errors - self._errors_start
        warnings = audit.counter.warnings - self._warnings_start
        if audit.counter not in log.handlers:  # nobody counts the kit's records: count our own
            warnings += len(self._faults.messages)
        return errors, warnings
