"""What `rollback` and `emergency-rollback` share: their options, confirmation, the plan shown, the result."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from migration_tools.cli import output, progress, reporting
from migration_tools.core import timeline
from migration_tools.core.errors import BadInput
from migration_tools.core.runtime import Kit
from migration_tools.restore.plan import DEFAULT_LOCK_TIMEOUT_S, LOCK_TRIES, RollbackPlan
from migration_tools.restore.run import RollbackResult, reallow_connections, rollback_to

F = TypeVar("F", bound=Callable[..., object])
MAX_LOCK_TIMEOUT_S = 600.0
REPORT_INTERVAL_S = 1.0  # the rollback's monitor samples each second: a restore is short


def _seconds(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if not math.isfinite(value) or not 0.05 <= value <= MAX_LOCK_TIMEOUT_S:
        raise click.BadParameter(f"{value} is not a number of seconds from 0.05 to {MAX_LOCK_TIMEOUT_S:g}")
    return value


def restore_options(func: F) -> F:
    """--in-place and --lock-timeout, for the commands that roll back."""
    func = click.option(
        "--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT_S, show_default=True, metavar="SECONDS",
        callback=_seconds,
        help=f"In place: how long one try waits for its table locks, the longest the application waits "
        f"on the rollback per try ({LOCK_TRIES} tries, pauses doubling from 0.5s).",
    )(func)
    return click.option(
        "--in-place", is_flag=True,
        help="Restore in place in one transaction after a safety backup, even when the role may create "
        "databases (for a database whose settings or privileges the role could not copy to a new one).",
    )(func)


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


def repair(kit: Kit, dry_run: bool) -> None:
    """Under the deploy lock, before planning: a database an interrupted swap left refusing
    connections is allowed them again (a dry run only says it would)."""
    reallow_connections(kit, output.show, dry_run=dry_run)


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
        if result.sessions_ended:
            output.line(f"Ended {result.sessions_ended} session(s) that held locks on the replaced tables")
    output.line(f"To undo this rollback: {result.undo}")
    output.verdict(
        True,
        f"database '{result.database}' rolled back to {result.dump.name} in {result.seconds:.1f}s",
    )


def act(kit: Kit, plan: RollbackPlan, *, yes: bool, dry_run: bool, reason: str) -> None:
    """Show the plan; for a dry run stop there, else confirm, restore and report."""
    done: list[RollbackResult] = []
    for text in plan.describe(dry_run=dry_run):
        output.line(text)
    if dry_run:
        output.verdict(True, f"dry run: backup {plan.dump.name} is valid; nothing was changed")
        return
    confirm(plan, yes)
    reporting_on = reporting.session(kit, kit.command, enabled=True, interval=REPORT_INTERVAL_S, aside=True,
                                     echo=False)
    watching = progress.watching(kit.params, expected_rows=plan.meta.row_counts, files=kit.paths.backups,
                                 aside=True)
    with reporting_on as session, watching:
        session.section("restored", lambda: reporting.backup_section(plan.dump) | restored_section(done))
        with timeline.step(f"restore {plan.dump.name}"):
            done.append(rollback_to(kit, plan.dump, reason=reason, take_lock=False, report=output.show,
                                    prepared=plan))
        session.verdict = f"rolled back to {plan.dump.name}"
    report(done[0])


def restored_section(done: list[RollbackResult]) -> dict[str, object]:
    """How the rollback went, for its report: method, what was kept, how to undo it."""
    if not done:
        return {}
    result = done[0]
    return {"method": result.method, "kept": result.kept, "undo": result.undo}
