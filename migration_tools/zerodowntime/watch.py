"""Everything that watches a zero-downtime run besides the command's monitor: the availability
probe, the health URL, the replica gate's waits and the lock retries. They start before the first
migration and stop after the checks; their figures join the monitor's report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from migration_tools.core.events import Report, step
from migration_tools.core.runtime import Kit
from migration_tools.deploy.health import HealthWatch
from migration_tools.deploy.monitor import MigrationMonitor
from migration_tools.deploy.probe import AvailabilityProbe, summary_line
from migration_tools.zerodowntime.replica_gate import ReplicaGate
from migration_tools.zerodowntime.retry import Retries
from migration_tools.zerodowntime.settings import ZeroDowntimeSettings


@dataclass
class Watchers:
    probe: AvailabilityProbe
    retries: Retries
    gate: ReplicaGate
    monitor: MigrationMonitor | None = None
    health: HealthWatch | None = None

    def retry_section(self) -> dict[str, Any]:
        return {"lock_retries": self.retries.count, "lock_retry_events": self.retries.snapshot()}

    def summary(self) -> str:
        waited = self.gate.section()["replica_wait_s"]
        replicas = f"; waited {waited:g}s for a lagging replica" if waited else ""
        return summary_line(self.probe.section(), self.retries.count) + replicas


@contextlib.contextmanager
def watching(kit: Kit, config: ZeroDowntimeSettings, retries: Retries, gate: ReplicaGate, tables: list[str],
             *, monitor: MigrationMonitor | None, report: Report) -> Iterator[Watchers]:
    watchers = Watchers(AvailabilityProbe(kit.params, tables, interval=config.probe_interval), retries, gate,
                        monitor)
    watchers.health = config.health.watch()
    if monitor is not None:
        monitor.add_section("availability", watchers.probe.section)
        monitor.add_section("lock_retries", watchers.retry_section)
        monitor.add_section("replicas", gate.section)
        if watchers.health is not None:
            monitor.add_section("health", watchers.health.section)
    report(step(f"Probing reads and writes of {len(tables)} table(s) every "
                f"{config.probe_interval * 1000:.0f} ms" + (f"; requesting {config.health.url}"
                                                            if watchers.health else "")))
    watchers.probe.start()
    if watchers.health is not None:
        watchers.health.start()
    try:
        yield watchers
    finally:
        watchers.probe.stop()
        if watchers.health is not None:
            watchers.health.stop()
        report(step(watchers.summary()))
