"""`migrate`: lock, back up, apply with progress, and undo this run's migrations on failure.

Decisions live here as plain functions; the click command only parses options and narrates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from migration_tools.core.errors import OperationFailed, RolledBack, prog_name
from migration_tools.core.runtime import Kit
from migration_tools.deploy import apply, plan
from migration_tools.pg import deploy_lock

Say = Callable[[str], None]


@dataclass(frozen=True)
class MigrateOptions:
    backup: bool = True
    auto_rollback: bool = True
    monitor: bool = False
    interval: float = 5.0
    deep_backup: bool = False


@dataclass
class MigrateOutcome:
    applied: list[apply.Step] = field(default_factory=list)
    backup: Path | None = None
    report: Path | None = None
    outcome: str = "success"


def dry_run(alias: str, say: Say) -> int:
    """Print the plan and each migration's SQL without applying anything; returns the count."""
    ex = plan.executor(alias)
    plan.check_conflicts(ex)
    todo = plan.pending(ex)
    if not todo:
        say("Would apply nothing: the database is up to date")
        return 0
    say(f"Would apply {len(todo)} migration(s), in this order:")
    for index, migration in enumerate(todo, 1):
        say(f"-- [{index}/{len(todo)}] {migration.app_label}.{migration.name}")
        for statement in ex.loader.collect_sql([(migration, False)]):
            say(statement)
    return len(todo)


@contextlib.contextmanager
def _monitoring(kit: Kit, options: MigrateOptions, say: Say) -> Iterator[Any]:
    if not options.monitor:
        yield None
        return
    from migration_tools.deploy.monitor import MigrationMonitor

    monitor = MigrationMonitor(
        kit.paths.monitoring, params=kit.params, interval=options.interval, echo=say
    )
    monitor.start_monitoring()
    try:
        yield monitor
    finally:
        monitor.stop_monitoring()


def run(
    kit: Kit,
    options: MigrateOptions,
    say: Say,
    progress: apply.ProgressFn,
    *,
    backup_path: Path | None = None,
    warn: Say | None = None,
) -> MigrateOutcome:
    """Apply the pending plan under the deploy lock. Raises RolledBack (exit 3) or OperationFailed.

    `backup_path` is a pre-migrate backup the caller already took (full-deploy); `warn` is told
    about model changes that have no migration (applied anyway, as Django's migrate does).
    """
    outcome = MigrateOutcome()
    with deploy_lock.hold(kit.params, "migrate"):
        ex = plan.executor(kit.alias)
        before = plan.applied_set(kit.alias)
        plan.check_conflicts(ex)
        if warn is not None:
            _warn_unmigrated(kit, ex, warn)
        if not plan.pending(ex):
            return outcome
        if backup_path is not None:
            outcome.backup = backup_path
        elif options.backup:
            outcome.backup = _take_backup(kit, options, say)
        with _monitoring(kit, options, say) as monitor:
            result = apply.apply_pending(kit.alias, progress, ex)
            outcome.applied = result.done
            for step in result.done:
                kit.log.info("applied %s in %.3fs", step.label, step.seconds)
                if monitor is not None:
                    monitor.record_migration(step.label, step.seconds)
            if result.error is None:
                if monitor is not None:
                    monitor.set_outcome("success")
                outcome.outcome = "success"
            else:
                outcome.outcome = _recover(kit, options, result, before, outcome.backup, say)
                if monitor is not None:
                    monitor.set_outcome(outcome.outcome)
        if monitor is not None:
            outcome.report = monitor.report_path
        if result.error is not None:
            _raise_for(outcome, result, options)
    return outcome


def _warn_unmigrated(kit: Kit, ex: MigrationExecutor, warn: Say) -> None:
    from migration_tools.deploy.checks import unmigrated_changes

    for app, ops in sorted(unmigrated_changes(kit.alias, ex).items()):
        text = (f"models in app '{app}' have changes with no migration ({ops[0]}); "
                f"run python manage.py makemigrations {app} before the next release")
        kit.log.warning(text)
        warn(text)


def _take_backup(kit: Kit, options: MigrateOptions, say: Say) -> Path:
    from migration_tools.backups.create import create_backup

    say("Taking the pre-migrate backup ...")
    made = create_backup(kit, "pre-migrate", deep=options.deep_backup)
    say(f"Backup: {made.dump} ({made.metadata.size_bytes:,} bytes, {made.seconds:.1f}s)")
    kit.log.info("pre-migrate backup %s", made.dump.name)
    return made.dump


def _recover(
    kit: Kit,
    options: MigrateOptions,
    result: apply.RunResult,
    before: set[tuple[str, str]],
    backup: Path | None,
    say: Say,
) -> str:
    """Undo what this run applied; returns the outcome name."""
    failed = ".".join(result.failed) if result.failed else "unknown migration"
    kit.log.error("migration %s failed: %s", failed, result.error)
    say(f"FAILED: {failed}: {result.error}")
    if not options.auto_rollback:
        kit.log.warning("automatic rollback disabled; %d migration(s) of this run stay applied",
                        len(result.done))
        return "failed"
    return undo_run(kit, result.keys, before, backup, say, failed)


def undo_run(
    kit: Kit,
    keys: list[tuple[str, str]],
    before: set[tuple[str, str]],
    backup: Path | None,
    say: Say,
    failed: str,
) -> str:
    """Undo the migrations `keys` this run applied; 'rolled-back' once verified, else 'rollback-failed'.

    Reverse operations when every one of them is reversible, else the pre-migrate backup.
    """
    if not keys:
        say("Nothing of this run was applied before the failure; the database is as before.")
        return "rolled-back" if plan.applied_set(kit.alias) == before else "rollback-failed"
    blockers = apply.irreversible(kit.alias, keys)
    try:
        if not blockers:
            say(f"Undoing this run's {len(keys)} migration(s) with their reverse operations ...")
            undone = apply.unapply(kit.alias, keys, lambda *a: _undo_progress(say, *a))
            if undone.error is not None:
                raise undone.error
            how = "reverse migrations"
        else:
            if backup is None:
                kit.log.error("cannot undo: irreversible %s and no backup", ", ".join(blockers))
                say(f"Cannot undo: {', '.join(blockers)} cannot be reversed and there is no backup.")
                return "rollback-failed"
            say(f"Irreversible migration(s) applied ({', '.join(blockers)}): restoring {backup.name} ...")
            from migration_tools.restore.run import rollback_to

            for conn in connections.all():
                conn.close()
            rollback_to(kit, backup, reason=f"{failed} failed", take_lock=False)
            how = f"restoring {backup.name}"
    except Exception as exc:
        kit.log.error("undo failed: %s", exc)
        say(f"UNDO FAILED: {exc}")
        return "rollback-failed"
    for conn in connections.all():
        conn.close()
    after = plan.applied_set(kit.alias)
    if after != before:
        kit.log.error("after the undo the applied migrations differ from before the run")
        say("UNDO INCOMPLETE: the applied migrations differ from those before the run.")
        return "rollback-failed"
    kit.log.info("rolled back by %s; applied migrations equal those before the run", how)
    say(f"Rolled back by {how}: the applied migrations equal those before the run.")
    return "rolled-back"


def _undo_progress(say: Say, event: str, migration: Any, index: int, total: int, secs: float) -> None:
    if event == "done":
        say(f"  unapplied [{index}/{total}] {migration.app_label}.{migration.name} in {secs:.2f}s")


def _raise_for(outcome: MigrateOutcome, result: apply.RunResult, options: MigrateOptions) -> None:
    failed = ".".join(result.failed) if result.failed else "a migration"
    rollback_cmd = (
        f"python rollback_manager.py rollback {outcome.backup.name}" if outcome.backup
        else "python rollback_manager.py emergency-rollback"
    )
    if outcome.outcome == "rolled-back":
        err = RolledBack(
            "migrate-rolled-back",
            f"migration {failed} failed and the database was rolled back to its state before this run",
            f"fix the migration, then run {prog_name()} migrate again (details in migration.log)",
        )
        raise err
    if outcome.outcome == "failed" and not options.auto_rollback:
        raise OperationFailed(
            "migrate-failed",
            f"migration {failed} failed; {len(result.done)} migration(s) of this run stay applied "
            "(--no-auto-rollback)",
            f"to return to the state before the run: {rollback_cmd}",
        )
    raise OperationFailed(
        "rollback-failed",
        f"MIGRATION {failed} FAILED AND UNDOING IT FAILED: the database may be half-migrated",
        f"restore the pre-migrate backup now: {rollback_cmd}",
    )
