"""What `rollback` and `emergency-rollback` share: confirmation, the plan shown, the result told."""

from __future__ import annotations

import sys

import click

from migration_tools.cli import output
from migration_tools.core.errors import BadInput
from migration_tools.core.runtime import Kit
from migration_tools.restore.plan import RollbackPlan
from migration_tools.restore.run import RollbackResult, rollback_to


def require_confirmation_channel(yes: bool, dry_run: bool) -> None:
    """Refuse at once when nobody can confirm: no terminal on stdin and no --yes."""
    if yes or dry_run or sys.stdin.isatty():
        return
    raise BadInput(
        "confirm-needed",
        "refusing to roll back without confirmation: stdin is not a terminal and --yes was not given; "
        "nothing was changed",
        "run it on a terminal to confirm, or pass --yes",
    )


def confirm(plan: RollbackPlan, yes: bool) -> None:
    if yes:
        return
    if not click.confirm(f"Roll back database '{plan.database}' to {plan.dump.name}?", default=False):
        raise BadInput("not-confirmed", "rollback not confirmed; nothing was changed", "")


def report(result: RollbackResult) -> None:
    output.mark("ok", f"Restored {result.tables} tables, {output.n(result.rows)} rows, "
                      f"{result.migrations} applied migrations: they match the backup's metadata")
    if result.method == "swap":
        output.line(f"Kept the replaced database as '{result.kept}'")
        if result.sessions_ended:
            output.line(f"Ended {result.sessions_ended} session(s) connected to the old database")
    else:
        output.line(f"Kept the replaced state as the safety backup {result.kept}")
    output.line(f"To undo this rollback: {result.undo}")
    output.verdict(
        True,
        f"database '{result.database}' rolled back to {result.dump.name} in {result.seconds:.1f}s",
    )


def act(kit: Kit, plan: RollbackPlan, *, yes: bool, dry_run: bool, reason: str) -> None:
    """Show the plan; for a dry run stop there, else confirm, restore and report."""
    for text in plan.describe():
        output.line(text)
    if dry_run:
        output.verdict(True, f"dry run: backup {plan.dump.name} is valid; nothing was changed")
        return
    confirm(plan, yes)
    result = rollback_to(kit, plan.dump, reason=reason, take_lock=False, report=output.show, prepared=plan)
    report(result)
