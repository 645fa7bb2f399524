"""`rollback FILENAME` and `emergency-rollback`: thin click commands over migration_tools.restore."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from migration_tools import deploy_lock, restore, runtime, ui
from migration_tools.clirun import database_option
from migration_tools.errors import BadInput, KitError, OperationFailed
from migration_tools.restore import RollbackPlan, RollbackResult
from migration_tools.runtime import Kit

yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Validate the backup and say what would be done; change nothing."
)


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


@contextlib.contextmanager
def audited(kit: Kit, what: str) -> Iterator[None]:
    """Log the outcome of the command to rollback.log, whatever it is."""
    kit.log.info("%s requested", what)
    try:
        yield
    except KitError as exc:
        kit.log.error("%s failed: %s [%s] exit=%d", what, exc.message, exc.error_id, exc.exit_code)
        raise
    except BaseException as exc:
        kit.log.error("%s failed: %s", what, type(exc).__name__)
        raise
    kit.log.info("%s succeeded", what)


def show_plan(plan: RollbackPlan) -> None:
    for text in plan.describe():
        ui.line(text)


def report(result: RollbackResult) -> None:
    ui.mark("ok", f"Restored {result.tables} tables, {ui.n(result.rows)} rows, "
                  f"{result.migrations} applied migrations: they match the backup's metadata")
    if result.method == "swap":
        ui.line(f"Kept the replaced database as '{result.kept}'")
        if result.sessions_ended:
            ui.line(f"Ended {result.sessions_ended} session(s) connected to the old database")
    else:
        ui.line(f"Kept the replaced state as the safety backup {result.kept}")
    ui.line(f"To undo this rollback: {result.undo}")
    ui.verdict(
        True,
        f"database '{result.database}' rolled back to {result.dump.name} in {result.seconds:.1f}s",
    )


def act(kit: Kit, plan: RollbackPlan, *, yes: bool, dry_run: bool, reason: str) -> None:
    show_plan(plan)
    if dry_run:
        ui.verdict(True, f"dry run: backup {plan.dump.name} is valid; nothing was changed")
        return
    confirm(plan, yes)
    result = restore.rollback_to(
        kit, plan.dump, reason=reason, take_lock=False, progress=ui.line, prepared=plan
    )
    report(result)


@click.command("rollback")
@click.argument("filename")
@yes_option
@dry_run_option
@database_option
def rollback_cmd(filename: str, yes: bool, dry_run: bool, alias: str) -> None:
    """Replace the database with backup FILENAME (a name in backups/), keeping the old state.

    The backup must validate (checksum and every data block) and be of this database. With
    CREATEDB the backup is restored into a new database, verified, and swapped in; the old
    database is kept renamed. Without it, a safety backup is taken and the restore runs in
    place in one transaction.
    """
    kit = runtime.start("rollback", alias, log_name="rollback", apps=False)
    with audited(kit, f"rollback {filename}"):
        dump = restore.resolve_backup(kit.paths.backups, filename)
        require_confirmation_channel(yes, dry_run)
        with deploy_lock.hold(kit.params, "rollback"):
            plan = restore.plan(kit, dump)
            act(kit, plan, yes=yes, dry_run=dry_run, reason="manual")


def newest_valid_plan(kit: Kit) -> RollbackPlan:
    """The plan for the newest backup of this database that validates; names what it skips."""
    from migration_tools import backup_catalog

    skipped: list[str] = []
    for entry in backup_catalog.list_backups(kit.paths.backups):
        dump = Path(entry.dump)
        if entry.valid:  # shallow checks passed: now the full read and the database
            meta, problem = restore.backup_problem(kit, dump)
        else:
            meta, problem = None, restore.BackupProblem("backup-invalid", entry.reason)
        if problem is not None or meta is None:
            reason = problem.reason if problem else "invalid"
            ui.warn(f"skipping {dump.name}: {reason}")
            kit.log.warning("emergency-rollback skipped %s: %s", dump.name, reason)
            skipped.append(dump.name)
            continue
        ui.line(f"Newest valid backup of '{kit.params.dbname}': {dump.name}")
        return restore.plan(kit, dump, meta)
    detail = f" (skipped: {', '.join(skipped)})" if skipped else ""
    raise OperationFailed(
        "no-valid-backup",
        f"no valid backup of database '{kit.params.dbname}' in {kit.paths.backups}{detail}; "
        "nothing was changed",
        "take one with ./production_migrate.sh backup, or restore a copy kept elsewhere",
    )


@click.command("emergency-rollback")
@yes_option
@dry_run_option
@database_option
def emergency_rollback_cmd(yes: bool, dry_run: bool, alias: str) -> None:
    """Roll back to the newest backup that validates, skipping (and naming) any that do not."""
    kit = runtime.start("emergency-rollback", alias, log_name="rollback", apps=False)
    with audited(kit, "emergency-rollback"):
        require_confirmation_channel(yes, dry_run)
        with deploy_lock.hold(kit.params, "rollback"):
            plan = newest_valid_plan(kit)
            act(kit, plan, yes=yes, dry_run=dry_run, reason="emergency")
