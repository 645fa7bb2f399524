"""A command's report session: the monitor over the whole command, then its JSON and HTML report.

`migrate --monitor`, `full-deploy --monitor`, `rollback` and `emergency-rollback` run inside
`session(...)`: the monitor starts first (so pre-flight, the backup, every migration, the checks
and an undo are on the timeline), the command's exit code and verdict are recorded however it
ends, and the report names the backup taken or restored and verify-data's results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_tools.cli import output
from migration_tools.core.errors import EXIT_FAILED, KitError
from migration_tools.core.events import step
from migration_tools.core.runtime import Kit

if TYPE_CHECKING:
    from migration_tools.deploy.monitor import MigrationMonitor

VERDICTS = {
    0: "succeeded",
    1: "failed",
    2: "refused: bad input, nothing changed",
    3: "failed and rolled back",
}


def backup_section(dump: Path | None) -> dict[str, Any]:
    """A backup's file, size, checksum and rows, from its metadata (nothing when there is none)."""
    if dump is None:
        return {}
    from migration_tools.backup import metadata

    try:
        meta = metadata.load(metadata.meta_path_for(dump))
    except Exception:  # a report without the backup's figures beats no report
        return {"file": dump.name, "path": str(dump)}
    return {
        "file": meta.file,
        "path": str(dump),
        "size_bytes": meta.size_bytes,
        "sha256": meta.sha256,
        "rows": sum(meta.row_counts.values()),
        "tables": len(meta.row_counts),
        "reason": meta.reason,
        "created_at": meta.created_at,
    }


def verify_section(found: Any) -> dict[str, Any]:
    """verify-data's results (an IntegrityReport) in a few figures: counts, orphans, duplicates, problems."""
    if found is None:
        return {}
    return {
        "ok": found.ok,
        "tables_checked": found.tables_checked,
        "orphan_total": found.orphan_total,
        "duplicate_total": found.duplicate_total,
        "problems": list(found.problems()),
        "counts": [{"label": c.label, "rows": c.rows, "estimated": c.estimated} for c in found.counts],
    }


def backup_rows(dump: Path) -> dict[str, int] | None:
    """The rows per table a backup's metadata records (what restoring it copies), if readable."""
    from migration_tools.backup import metadata

    try:
        return dict(metadata.load(metadata.meta_path_for(dump)).row_counts)
    except Exception:
        return None


class Session:
    def __init__(self, monitor: MigrationMonitor | None) -> None:
        self.monitor = monitor
        self.verdict: str | None = None  # the command's own words for success
        self.sections: dict[str, Callable[[], dict[str, Any]]] = {}

    def section(self, key: str, provider: Callable[[], dict[str, Any] | None]) -> None:
        """`report[key] = provider()` when the report is written (skipped when it gives nothing)."""

        def wrapped() -> dict[str, Any]:
            try:
                value = provider()
            except Exception:  # the report must not fail the command
                value = None
            return {key: value} if value else {}

        if self.monitor is not None:
            self.monitor.add_section(key, wrapped)


@contextlib.contextmanager
def session(
    kit: Kit, command: str, *, enabled: bool, interval: float, announce: bool = True, aside: bool = False,
    echo: bool = True,
) -> Iterator[Session]:
    """The monitor over the body; its reports are written however the body ends (`announce`: say where)."""
    if not enabled:
        yield Session(None)
        return
    from migration_tools.deploy.monitor import MigrationMonitor

    monitor = MigrationMonitor(
        kit.paths.monitoring,
        params=kit.params,
        interval=interval,
        echo=(lambda text: output.show(step(text))) if echo else None,
        command=command,
        aside=aside,
    )
    current = Session(monitor)
    monitor.start_monitoring()
    code = 0
    try:
        yield current
    except KitError as exc:
        code = exc.exit_code
        raise
    except BaseException:
        code = EXIT_FAILED
        raise
    finally:
        verdict = current.verdict if code == 0 and current.verdict else VERDICTS.get(code, "failed")
        monitor.finish(exit_code=code, verdict=verdict)
        monitor.stop_monitoring()
        if announce:
            output.line(f"Performance report: {monitor.report_path or 'not written (see the warnings)'}")
            output.line(f"HTML report: {monitor.html_path or 'not written (see the warnings)'}")
