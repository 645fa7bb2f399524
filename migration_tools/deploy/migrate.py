"""`migrate`: lock, back up, apply with progress, and undo this run's migrations on failure.

Decisions live here as plain functions; the click command only parses options and narrates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_tools.core import signals, timeline
from migration_tools.core.errors import OperationFailed, RolledBack, prog_name, status_command
from migration_tools.core.events import Event, Report, step
from migration_tools.core.runtime import Kit
from migration_tools.deploy import apply, plan, run_state, undo
from migration_tools.deploy.plan import Release
from migration_tools.pg import deploy_lock


@dataclass(frozen=True)
class MigrateOptions:
    backup: bool = True
    auto_rollback: bool = True
    monitor: bool = False
    interval: float = 5.0
    deep_backup: bool = False
    one_transaction: bool = True


@dataclass
class MigrateOutcome:
    applied: list[apply.Step] = field(default_factory=list)
    own_writes: dict[str, int] = field(default_factory=dict)
    own_writes_known: bool = True
    backup: Path | None = None
    report: Path | None = None
    outcome: str = "success"


def dry_run(alias: str, report: Report) -> int:
    """Tell the plan and each migration's SQL without applying anything; returns the count."""
    release = plan.prepare(alias)
    todo = release.pending
    if not todo:
        report(step("Would apply nothing: the database is up to date"))
        return 0
    report(step(f"Would apply {len(todo)} migration(s), in this order:"))
    for index, migration in enumerate(todo, 1):
        report(step(f"-- [{index}/{len(todo)}] {migration.app_label}.{migration.name}"))
        for statement in release.executor.loader.collect_sql([(migration, False)]):
            report(step(statement))
    return len(todo)


def take_backup(kit: Kit, options: MigrateOptions, report: Report) -> Path:
    """The pre-migrate backup: the one place a release takes it (migrate and full-deploy)."""
    from migration_tools.backup.create import create_backup

    report(step("Taking the pre-migrate backup ..."))
    if kit.settings.backup_format == "pgbackrest":
        from migration_tools.backup.pitr_take import create

        with timeline.step("backup"):
            point = create(kit, "pre-migrate", report=report)
        report(step(f"Backup: restore point {point.meta.restore_point.name} after pgBackRest backup "
                    f"{point.backup.label} ({point.seconds:.1f}s)"))
        kit.log.info("pre-migrate restore point %s", point.path.name)
        return point.path
    with timeline.step("backup"):
        made = create_backup(kit, "pre-migrate", deep=options.deep_backup)
    report(step(f"Backup: {made.dump} ({made.metadata.size_bytes:,} bytes, {made.seconds:.1f}s)"))
    kit.log.info("pre-migrate backup %s", made.dump.name)
    return made.dump


def warn_unmigrated(kit: Kit, release: Release, report: Report) -> None:
    """Model changes without a migration: applied anyway, as Django's migrate does, but said."""
    from migration_tools.deploy.checks import unmigrated_changes

    for app, ops in sorted(unmigrated_changes(release.executor).items()):
        text = (f"models in app '{app}' have changes with no migration ({ops[0]}); "
                f"run python manage.py makemigrations {app} before the next release")
        kit.log.warning(text)
        report(Event("warn", text))


@contextlib.contextmanager
def _monitoring(kit: Kit, options: MigrateOptions, report: Report, given: Any = None) -> Iterator[Any]:
    if given is not None:  # the command's own monitor, over the whole command: it stops it
        yield given
        return
    if not options.monitor:
        yield None
        return
    from migration_tools.deploy.monitor import MigrationMonitor

    monitor = MigrationMonitor(
        kit.paths.monitoring, params=kit.params, interval=options.interval,
        echo=lambda text: report(step(text)),
    )
    monitor.start_monitoring()
    try:
        yield monitor
    finally:
        monitor.stop_monitoring()


@contextlib.contextmanager
def _probing(kit: Kit, release: Release, monitor: Any) -> Iterator[None]:
    """With a monitor, the availability probe watches the tables the plan touches (report only)."""
    if monitor is None:
        yield
        return
    from migration_tools.deploy.probe import AvailabilityProbe
    from migration_tools.deploy.touched import touched_tables

    before = release.executor._create_project_state(with_applied_migrations=True)
    with AvailabilityProbe(kit.params, touched_tables(before, release.pending)) as probe:
        monitor.add_section("availability", probe.section)
        yield


def run(
    kit: Kit,
    options: MigrateOptions,
    report: Report,
    *,
    release: Release | None = None,
    backup_path: Path | None = None,
    outcome: MigrateOutcome | None = None,
    monitor: Any = None,
) -> MigrateOutcome:
    """Apply the release under the deploy lock. Raises RolledBack (exit 3) or OperationFailed.

    `release` and `backup_path` are given by full-deploy, which prepared and backed up already.
    `outcome` is filled as the run goes, so a caller can read it after a failure too. `monitor`
    is a MigrationMonitor the caller started and stops (its report then covers the whole command).
    """
    outcome = outcome or MigrateOutcome()
    outcome.backup = outcome.backup or backup_path
    given = monitor
    with deploy_lock.hold(kit.params, "migrate"):
        if release is None:
            with timeline.step("plan"):
                release = plan.prepare(kit.alias)
            warn_unmigrated(kit, release, report)
        if not release.pending:
            return outcome
        earlier = run_state.unfinished(kit, release.applied_before)
        if earlier is not None:
            report(Event("warn", earlier.describe()))
        if outcome.backup is None and options.backup:
            outcome.backup = take_backup(kit, options, report)
        with _monitoring(kit, options, report, given) as monitor, _probing(kit, release, monitor):
            one_transaction = options.one_transaction and apply.can_run_in_one_transaction(release)
            if options.one_transaction and not one_transaction:
                report(Event("warn", "the plan holds a non-atomic migration: "
                                     "each migration commits on its own"))
            planned = [f"{m.app_label}.{m.name}" for m in release.pending]
            tracker = run_state.Tracker(kit, kit.command, planned, outcome.backup, one_transaction)
            result = apply.apply_pending(release, tracker.follow(report), one_transaction=one_transaction)
            if not result.rolled_back:
                outcome.applied = result.done
                outcome.own_writes, outcome.own_writes_known = result.own_writes, result.own_writes_known
            for done in outcome.applied:
                kit.log.info("applied %s in %.3fs", done.label, done.seconds)
                if monitor is not None:
                    monitor.record_migration(done.label, done.seconds)
            undone = None
            if result.error is not None:
                undone = _recover(kit, options, result, release, outcome.backup, report)
                outcome.outcome = undone.outcome if undone else "failed"
            if result.error is None or (undone is not None and undone.outcome == undo.ROLLED_BACK):
                tracker.done()
            if monitor is not None:
                monitor.set_outcome(outcome.outcome)
        if monitor is not None and monitor is not given:
            outcome.report = monitor.report_path
            report(step(f"Performance report: {outcome.report or 'not written (see the warnings)'}"))
        if result.error is not None:
            raise_for(failure_text(result), undone, result, outcome.backup, "migrate")
    return outcome


def _recover(
    kit: Kit, options: MigrateOptions, result: apply.RunResult, release: Release, backup: Path | None,
    report: Report,
) -> undo.UndoOutcome | None:
    """Undo what this run applied, unless told not to (None)."""
    failed = ".".join(result.failed) if result.failed else "unknown migration"
    if isinstance(result.error, KeyboardInterrupt):
        kit.log.error("interrupted by %s during %s", signals.describe(result.error), failed)
        report(Event("fail", f"INTERRUPTED by {signals.describe(result.error)} during {failed}"))
    else:
        kit.log.error("migration %s failed: %s", failed, result.error)
        report(Event("fail", f"FAILED: {failed}: {result.error}"))
    if not options.auto_rollback and not result.rolled_back:
        kit.log.warning("automatic rollback disabled; %d migration(s) of this run stay applied",
                        len(result.done))
        return None
    with signals.shielded(lambda text: report(Event("warn", text))), timeline.step("undo", "undo") as marked:
        undone = undo.undo_run(kit, result, release.applied_before, backup, report)
        marked.outcome, marked.detail = ("ok" if undone.outcome == undo.ROLLED_BACK else "failed"), undone.how
        return undone


def failure_text(result: apply.RunResult) -> str:
    failed = ".".join(result.failed) if result.failed else "a migration"
    if isinstance(result.error, KeyboardInterrupt):
        return f"interrupted by {signals.describe(result.error)} during migration {failed}"
    return f"migration {failed} failed"


def raise_for(what: str, undone: undo.UndoOutcome | None, result: apply.RunResult, backup: Path | None,
              command: str) -> None:
    """The one error a failed run ends with: rolled back (exit 3), kept, or half-migrated (exit 1)."""
    applied = 0 if result.rolled_back else len(result.done)
    # Without a backup of this run, an older one would discard what was committed since: not offered.
    restore_cmd = (
        f"python rollback_manager.py rollback {backup.name} --yes" if backup
        else f"no backup of this run was taken (--no-backup); see what is applied with {status_command()}, "
             f"then finish the release with {prog_name()} {command} or migrate the apps back with "
             "python manage.py migrate APP MIGRATION"
    )
    if undone is None:
        raise OperationFailed(
            "migrate-failed",
            f"{what}; {applied} migration(s) of this run stay applied (--no-auto-rollback)",
            f"to return to the state before the run: {restore_cmd}" if backup else restore_cmd,
        )
    if undone.outcome == undo.ROLLED_BACK:
        raise RolledBack(
            f"{command}-rolled-back",
            f"{what}; the database was rolled back to its state before this run ({undone.how})",
            (f"run {prog_name()} {command} again when ready" if what.startswith("interrupted")
             else f"fix the cause, then run {prog_name()} {command} again (details in migration.log)"),
        )
    if undone.outcome == undo.KEPT:
        detail = undone.reason or "other sessions wrote since the backup: " + ", ".join(
            f"{table} ({rows:,} row(s))" for table, rows in sorted(undone.others_wrote.items())
        )
        raise OperationFailed(
            "undo-would-lose-writes",
            f"{what}; {applied} migration(s) of this run stay applied and the pre-migrate backup was "
            f"NOT restored, because {detail}; nothing was discarded",
            f"to restore it anyway, discarding those writes: {restore_cmd}",
        )
    if result.rolled_back:
        raise OperationFailed(
            "undo-unchecked",
            f"{what} and the database could not be reached afterwards ({undone.reason}); the plan ran in "
            "one transaction that was never committed, so PostgreSQL discards it: no migration of this "
            "run is applied",
            f"once the server answers, check with {status_command()}",
        )
    labels = ", ".join(step.label for step in result.done) or "none"
    raise OperationFailed(
        "rollback-failed",
        f"{what.upper()} AND UNDOING IT FAILED ({undone.reason}): the database is half-migrated; "
        f"this run applied {applied} migration(s): {labels}",
        f"restore the pre-migrate backup now: {restore_cmd}" if backup else restore_cmd,
    )
