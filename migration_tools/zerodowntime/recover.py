"""Undo a failed zero-downtime run by the rules of `migrate`, then check the schema too.

Without one transaction around the plan (concurrent index builds cannot run in one), a failure
can leave the failing migration part-way. First its completed operations are reversed (the
library's idempotent SQL skips what is not there; a RunPython that failed was rolled back by its
own transaction; a RunSQL that failed part-way cannot be told, so the backup rule takes over).
Then the migrations this run applied are undone as `migrate` undoes them. "Rolled back" is said
only when the applied migrations and the schema both equal those before the run.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlparse
from django.db import connections
from django.db.migrations.migration import Migration
from django.db.migrations.operations.special import RunPython, RunSQL

from migration_tools.core.events import Report, step
from migration_tools.core.runtime import Kit
from migration_tools.deploy import apply, undo
from migration_tools.deploy.plan import MigrationKey, Release, executor
from migration_tools.pg import db
from migration_tools.pg.schema_shape import schema_shape, shape_differences


def current_shape(kit: Kit) -> frozenset[str]:
    with db.connect(kit.params, purpose="schema") as conn:
        return schema_shape(conn)


def _one_statement(operation: RunSQL) -> bool:
    """A RunSQL of one statement: failing, it changed nothing (Django runs each statement on its own)."""
    sqls = operation.sql if isinstance(operation.sql, (list, tuple)) else [operation.sql]
    if len(sqls) != 1:
        return False
    text = sqls[0][0] if isinstance(sqls[0], (list, tuple)) else sqls[0]
    return len([s for s in sqlparse.split(sqlparse.format(str(text), strip_comments=True)) if s.strip()]) == 1


def _partial_cleanup(kit: Kit, release: Release, result: apply.RunResult, report: Report) -> str:
    """Reverse the completed operations of the migration that failed; '' when done or nothing to do,
    else why it cannot be done exactly."""
    if result.failed is None or result.rolled_back:
        return ""
    migration = release.executor.loader.graph.nodes[result.failed]
    operations = migration.operations
    done = result.operations_done
    failing = operations[done] if done < len(operations) else None
    if isinstance(failing, RunSQL) and not _one_statement(failing):
        return f"{failing.describe()} of {result.failed[0]}.{result.failed[1]} failed part-way"
    # A failed RunPython was rolled back by its own transaction, a failed single statement did nothing.
    count = done if failing is None or isinstance(failing, (RunPython, RunSQL)) else done + 1
    if count == 0:
        return ""
    part = Migration(migration.name, migration.app_label)
    part.operations = operations[:count]
    part.atomic = migration.atomic
    problems = [p for p in (apply.reverse_problem(op) for op in part.operations) if p]
    if problems:
        return problems[0]
    report(step(f"Reversing the {count} completed operation(s) of {result.failed[0]}.{result.failed[1]} ..."))
    state = executor(kit.alias)._create_project_state(with_applied_migrations=True)
    with connections[kit.alias].schema_editor(atomic=part.atomic) as editor:
        part.unapply(state, editor)
    return ""


def recover(
    kit: Kit, release: Release, result: apply.RunResult, before: set[MigrationKey], backup: Path | None,
    shape_before: frozenset[str], report: Report,
) -> undo.UndoOutcome:
    try:
        why = _partial_cleanup(kit, release, result, report)
    except Exception as exc:
        why = f"reversing the failed migration's operations failed: {type(exc).__name__}: {exc}"
    if why:
        report(step(f"The failed migration cannot be reversed exactly ({why})"))
        outcome = undo.restore_backup(kit, result, before, backup, report)
    else:
        outcome = undo.undo_run(kit, result, before, backup, report)
    if outcome.outcome != undo.ROLLED_BACK:
        return outcome
    try:
        shape_after = current_shape(kit)
    except Exception as exc:
        return undo.failed(kit, report, f"the schema could not be read after the undo: {exc}")
    differences = shape_differences(shape_before, shape_after)
    if differences:
        return undo.failed(kit, report, "after the undo the schema differs from before the run: "
                           + "; ".join(differences))
    kit.log.info("schema after the undo equals the schema before the run (%d objects)", len(shape_after))
    report(step("Checked: the schema equals the schema before the run."))
    return outcome


def undo_applied(
    kit: Kit, release: Release, applied: list[apply.Step], before: set[MigrationKey], backup: Path | None,
    shape_before: frozenset[str], own_writes_known: bool, report: Report,
) -> tuple[apply.RunResult, undo.UndoOutcome]:
    """A check after migrating failed (health, verify-data): undo the whole run."""
    result = apply.RunResult(done=applied, own_writes_known=own_writes_known, failed_at=time.monotonic())
    return result, recover(kit, release, result, before, backup, shape_before, report)
