"""Undo what a failed run applied, by rules that keep the data exact and never discard others' writes.

In this order:
1. The whole plan ran in one transaction: PostgreSQL already rolled it back; it is checked.
2. Reverse operations, when every migration of the run really reverses (nothing irreversible,
   no RunPython or RunSQL whose reverse is a no-op).
3. The pre-migrate backup, when nobody else wrote since it was taken (the statistics' write
   counters recorded with the backup, against now, minus the run's own writes).
4. Otherwise nothing automatic: the database stays as it is, and the operator is told which
   tables others wrote to and the command that restores the backup anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections

from migration_tools.backup import metadata, pitr_meta
from migration_tools.core.events import Event, Report, step
from migration_tools.core.runtime import Kit
from migration_tools.deploy import apply, plan
from migration_tools.deploy.plan import MigrationKey
from migration_tools.pg import catalog
from migration_tools.restore import checks

ROLLED_BACK, FAILED, KEPT = "rolled-back", "rollback-failed", "kept"


@dataclass
class UndoOutcome:
    outcome: str  # rolled-back | rollback-failed | kept (not undone: others wrote since the backup)
    how: str = ""
    others_wrote: dict[str, int] = field(default_factory=dict)
    reason: str = ""


def undo_run(
    kit: Kit, result: apply.RunResult, before: set[MigrationKey], backup: Path | None, report: Report
) -> UndoOutcome:
    """Bring the database back to its state before the run, or say exactly why it was not.

    A lost connection or a stopped server ends here too: the undo fails, and says why.
    """
    try:
        return _undo(kit, result, before, backup, report)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return failed(kit, report, f"{type(exc).__name__}: {first}")


def _undo(
    kit: Kit, result: apply.RunResult, before: set[MigrationKey], backup: Path | None, report: Report
) -> UndoOutcome:
    for conn in connections.all():
        conn.close()
    if result.rolled_back or not result.keys:
        how = ("the whole plan ran in one transaction: PostgreSQL rolled it back" if result.rolled_back
               else "nothing of this run was applied before the failure")
        return _checked(kit, before, how, report, result.failed_at)
    blockers = apply.reverse_blockers(kit.alias, result.keys)
    if not blockers:
        report(step(f"Undoing this run's {len(result.keys)} migration(s) with their reverse operations ..."))
        undone = apply.unapply(kit.alias, result.keys, report)
        if undone.error is not None:
            return failed(kit, report, f"a reverse migration failed: {undone.error}")
        return _checked(kit, before, "reverse migrations", report, result.failed_at)
    report(step(f"Reverse operations would not restore the data: {', '.join(blockers)}"))
    return restore_backup(kit, result, before, backup, report)


def restore_backup(
    kit: Kit, result: apply.RunResult, before: set[MigrationKey], backup: Path | None, report: Report
) -> UndoOutcome:
    """Rule 3 and 4: the pre-migrate backup when nobody else wrote since, else keep everything."""
    if backup is None:
        return failed(kit, report, "there is no pre-migrate backup to restore")
    if pitr_meta.is_pitr_name(backup.name):
        why = (f"the pre-migrate backup is restore point {backup.stem} of pgBackRest: restoring it takes the "
               "whole cluster back, which the kit does only when asked")
        kit.log.error("not restoring %s automatically: %s", backup.name, why)
        return UndoOutcome(KEPT, reason=why)
    others, why = others_wrote_since(kit, backup, result)
    if others or why:
        detail = why or ", ".join(f"{t} ({n:,} row(s))" for t, n in sorted(others.items()))
        kit.log.error("not restoring %s automatically: %s", backup.name, detail)
        return UndoOutcome(KEPT, others_wrote=others, reason=why)
    report(step(f"Nobody else wrote since {backup.name}: restoring it ..."))
    from migration_tools.restore.run import rollback_to

    try:
        rollback_to(kit, backup, reason="the run failed", take_lock=False, report=report)
    except Exception as exc:
        return failed(kit, report, f"restoring {backup.name} failed: {exc}")
    return _checked(kit, before, f"restoring {backup.name}", report, result.failed_at)


def others_wrote_since(kit: Kit, backup: Path, result: apply.RunResult) -> tuple[dict[str, int], str]:
    """Rows others wrote per table since the backup, or a reason why that cannot be told."""
    if not result.own_writes_known:
        return {}, "a non-atomic migration wrote rows, so this run's writes cannot be told from others'"
    time.sleep(catalog.STATS_FLUSH_DELAY_S)
    meta = metadata.load(metadata.meta_path_for(backup))
    return checks.writes_by_others(kit.params, backup.name, meta, result.own_writes)


def _checked(kit: Kit, before: set[MigrationKey], how: str, report: Report, failed_at: float) -> UndoOutcome:
    for conn in connections.all():
        conn.close()
    if plan.applied_set(kit.alias) != before:
        return failed(kit, report, f"after {how} the applied migrations differ from those before the run")
    kit.log.info("rolled back (%s) %.3fs after the failure; applied migrations equal those before the run",
                 how, time.monotonic() - failed_at)
    report(step(f"Rolled back ({how}): the applied migrations equal those before the run."))
    return UndoOutcome(ROLLED_BACK, how=how)


def failed(kit: Kit, report: Report, why: str) -> UndoOutcome:
    kit.log.error("undo failed: %s", why)
    report(Event("fail", f"UNDO FAILED: {why}"))
    return UndoOutcome(FAILED, reason=why)
