"""`zero-downtime`, top to bottom: lint, phase, backup, watch, apply, check, recover.

Under the deploy lock and on the zero-downtime connection (engine.py): the plan is linted as it
will really run (the library's SQL, with the kit's timeouts), refused when a statement would
still block or break the application, backed up, applied migration by migration with the probe,
the monitor and the health URL watching, then checked (health after migrating, verify-data's new
problems). Any failure is undone by the rules of `migrate` (recover.py) and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from migration_tools.core import signals, timeline
from migration_tools.core.errors import KitError, OperationFailed, prog_name
from migration_tools.core.events import Event, Report, step
from migration_tools.core.runtime import Kit
from migration_tools.deploy import apply, migrate, plan, run_state, undo
from migration_tools.deploy.integrity.report import IntegrityReport
from migration_tools.deploy.integrity.verify import VerifyOptions, verify_data_integrity
from migration_tools.deploy.monitor import MigrationMonitor
from migration_tools.deploy.pipeline import DeployReport, verify
from migration_tools.deploy.touched import touched_tables
from migration_tools.lint.analyse import LintReport
from migration_tools.lint.findings import unsafe_error
from migration_tools.lint.run import lint_plan
from migration_tools.lint.settings import LintSettings
from migration_tools.pg import deploy_lock
from migration_tools.zerodowntime import engine, phases, recover, watch
from migration_tools.zerodowntime.replica_gate import ReplicaGate
from migration_tools.zerodowntime.retry import is_lock_timeout
from migration_tools.zerodowntime.settings import ZeroDowntimeSettings

# The application keeps running: verify-data on one connection, without parallel workers; the
# baseline before migrating only what new problems are judged against (no counts, no duplicates).
GENTLE = VerifyOptions(gentle=True)
GENTLE_BASELINE = VerifyOptions(gentle=True, problems_only=True)


@dataclass(frozen=True)
class Options:
    phase: str = phases.BOTH
    allow_unsafe: bool = False
    backup: bool = True
    deep_backup: bool = False
    verify: bool = True  # verify-data before (the baseline) and after migrating


@dataclass
class Outcome:
    applied: list[apply.Step] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    backup: Path | None = None
    summary: str = ""
    integrity: IntegrityReport | None = None  # verify-data's results after migrating


def _lint(kit: Kit, release: plan.Release) -> tuple[LintReport, LintSettings]:
    """The plan's lint as it will run: the library's SQL, and no migration in a transaction (its
    editor runs every statement on its own; only a RunPython keeps a transaction of its own)."""
    lint_settings = LintSettings.from_kit(getattr(settings, "MIGRATION_KIT", None))
    atomic = {m: m.atomic for m in release.pending}
    try:
        for migration in release.pending:
            migration.atomic = False
        found = lint_plan(release.executor, release.pending, connections[kit.alias], lint_settings,
                          params=kit.params, one_transaction=False)
    finally:
        for migration, was in atomic.items():
            migration.atomic = was
    return found, lint_settings


def _findings_by_migration(release: plan.Release, linted: LintReport) -> dict[str, list[str]]:
    """The report's lint column: each pending migration's findings, as the lint judged them."""
    found: dict[str, list[str]] = {f"{m.app_label}.{m.name}": [] for m in release.pending}
    for f in linted.findings:
        where = f" on {f.table}" if f.table else ""
        found.setdefault(f.migration, []).append(f"{f.level}: {f.title}{where}")
    return {label: items or ["none"] for label, items in found.items()}


def _failure_text(result: apply.RunResult, config: ZeroDowntimeSettings) -> str:
    failed = ".".join(result.failed) if result.failed else "a migration"
    if isinstance(result.error, KitError):  # the kit stopped it (a replica too far behind)
        return f"migration {failed} was stopped: {result.error.message}"
    if result.error is not None and is_lock_timeout(result.error):
        return (f"migration {failed} could not take its lock within {config.lock_timeout:g}s in "
                f"{config.tries} tries (another session held it)")
    return migrate.failure_text(result)


def run(kit: Kit, config: ZeroDowntimeSettings, options: Options, report: Report,
        monitor: MigrationMonitor | None = None, outcome: Outcome | None = None) -> Outcome:
    """`monitor`: the command's, started and stopped by the caller (its report covers the whole run);
    `outcome` is filled as the run goes, so the caller can read it after a failure too."""
    outcome = outcome or Outcome()
    retries = engine.retries_for(config)
    gate = ReplicaGate(kit.params, limit=config.replica_lag_limit, max_wait=config.replica_wait_max,
                       say=lambda text: report(step(text)))
    with deploy_lock.hold(kit.params, "zero-downtime"), contextlib.closing(gate), \
            engine.zero_downtime_connection(kit.alias, config, retries, gate):
        with timeline.step("plan"):
            release = plan.prepare(kit.alias)
        migrate.warn_unmigrated(kit, release, report)
        if not release.pending:
            return outcome
        with timeline.step("lint"):
            linted, lint_settings = _lint(kit, release)
        if monitor is not None:
            monitor.add_section("lint", lambda: {"lint": _findings_by_migration(release, linted)})
        chosen = phases.select(release.pending, linted.findings, options.phase)
        outcome.deferred = chosen.deferred
        todo = release.pending[: chosen.count]
        labels = [f"{m.app_label}.{m.name}" for m in todo]
        refused = phases.refusing(linted.findings, set(labels), options.phase, lint_settings.threshold)
        if refused and not options.allow_unsafe:
            raise unsafe_error(refused, "zero-downtime")
        for finding in refused:
            report(Event("warn", f"allowed by --allow-unsafe: {finding.migration}: {finding.title} "
                                 f"({finding.why})"))
        if not todo:
            return outcome
        earlier = run_state.unfinished(kit, release.applied_before)
        if earlier is not None:
            report(Event("warn", earlier.describe()))
        config.health.require_healthy("zero-downtime")
        if options.backup:
            outcome.backup = migrate.take_backup(
                kit, migrate.MigrateOptions(deep_backup=options.deep_backup), report)
        baseline = None
        if options.verify:
            with timeline.step("verify-data before"):
                baseline = verify_data_integrity(kit.params, kit.settings, kit.alias, GENTLE_BASELINE)
        shape_before = recover.current_shape(kit)
        tables = touched_tables(release.executor._create_project_state(with_applied_migrations=True), todo)
        with watch.watching(kit, config, retries, gate, tables, monitor=monitor, report=report) as watchers:
            _apply_and_check(kit, config, release, len(todo), labels, outcome, baseline, shape_before,
                             watchers, report)
        outcome.summary = watchers.summary()
    return outcome


def _apply_and_check(
    kit: Kit, config: ZeroDowntimeSettings, release: plan.Release, count: int, labels: list[str],
    outcome: Outcome, baseline: IntegrityReport | None, shape_before: frozenset[str],
    watchers: watch.Watchers, report: Report,
) -> None:
    tracker = run_state.Tracker(kit, kit.command, labels, outcome.backup, False)
    result = apply.apply_pending(release, tracker.follow(report), one_transaction=False, limit=count)
    result.own_writes_known = False  # without one transaction, the run's row writes cannot be read apart
    for done in result.done:
        kit.log.info("applied %s in %.3fs", done.label, done.seconds)
        if watchers.monitor is not None:
            watchers.monitor.record_migration(done.label, done.seconds)
    if result.error is not None:
        what = _failure_text(result, config)
        kit.log.error("%s: %s", what, result.error)
        report(Event("fail", f"FAILED: {what}: {result.error}"))
        with _undoing(report, watchers.gate) as marked:
            undone = recover.recover(kit, release, result, release.applied_before, outcome.backup,
                                     shape_before, report)
            marked.outcome = "ok" if undone.outcome == undo.ROLLED_BACK else "failed"
        _finish(tracker, watchers, undone)
        migrate.raise_for(what, undone, result, outcome.backup, "zero-downtime")
    outcome.applied = result.done
    try:
        if watchers.health is not None:
            with timeline.step("health after"):
                watchers.health.check_after()
        if baseline is None:
            report(Event("warn", f"verify-data not run (--no-verify): new data problems were not looked for; "
                                 f"run {prog_name()} verify-data when convenient"))
        else:
            with timeline.step("verify-data"):
                checked = DeployReport()
                try:
                    verify(kit, baseline, checked, GENTLE)
                finally:
                    outcome.integrity = checked.integrity
    except (Exception, KeyboardInterrupt) as exc:
        cause = exc.message if isinstance(exc, OperationFailed) else str(exc) or type(exc).__name__
        report(Event("fail", f"FAILED after migrating: {cause}"))
        with _undoing(report, watchers.gate) as marked:
            result, undone = recover.undo_applied(kit, release, result.done, release.applied_before,
                                                  outcome.backup, shape_before, False, report)
            marked.outcome = "ok" if undone.outcome == undo.ROLLED_BACK else "failed"
        _finish(tracker, watchers, undone)
        migrate.raise_for(f"zero-downtime failed after migrating ({cause})", undone, result, outcome.backup,
                          "zero-downtime")
    tracker.done()
    if watchers.monitor is not None:
        watchers.monitor.set_outcome("success")


@contextlib.contextmanager
def _undoing(report: Report, gate: ReplicaGate) -> Iterator[Any]:
    """The undo: on the timeline, shielded from a second signal, not waiting for lagging replicas."""
    with signals.shielded(lambda text: report(Event("warn", text))), gate.aside(), \
            timeline.step("undo", "undo") as marked:
        yield marked


def _finish(tracker: run_state.Tracker, watchers: watch.Watchers, undone: undo.UndoOutcome) -> None:
    if undone.outcome == undo.ROLLED_BACK:
        tracker.done()
    if watchers.monitor is not None:
        watchers.monitor.set_outcome(undone.outcome)
