"""`emergency-rollback`: the newest backup of this database that passes the full check, then as rollback."""

from __future__ import annotations

import click

from migration_tools.backup import inventory
from migration_tools.cli import output, pitr
from migration_tools.cli.options import database_option, rollback_dry_run_option, yes_option
from migration_tools.cli.restoring import act, repair, require_confirmation_channel, restore_options
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
from migration_tools.core.errors import OperationFailed
from migration_tools.core.runtime import Kit
from migration_tools.pg import deploy_lock
from migration_tools.restore import plan as rollback_plan

EMERGENCY_REASONS = ("pre-migrate", "manual")


def newest_valid_plan(
    kit: Kit, *, in_place: bool = False, lock_timeout_s: float = rollback_plan.DEFAULT_LOCK_TIMEOUT_S
) -> rollback_plan.RollbackPlan:
    """The plan for the newest backup of this database, taken before a release or by the operator,
    that validates; names what it skips. Safety backups a rollback took of the state it replaced
    are never chosen here (they hold the state being escaped): they can be restored by name."""
    skipped: list[str] = []
    for entry in inventory.list_backups(kit.paths.backups, kit.params.dbname):
        if entry.meta is not None and entry.meta.reason not in EMERGENCY_REASONS:
            continue
        if entry.valid:  # shallow checks passed: now the full read and the database
            meta, problem = rollback_plan.backup_problem(kit, entry.dump)
        else:
            meta, problem = None, rollback_plan.BackupProblem("backup-invalid", entry.reason)
        if problem is not None or meta is None:
            reason = problem.reason if problem else "invalid"
            output.warn(f"skipping {entry.dump.name}: {reason}")
            kit.log.warning("emergency-rollback skipped %s: %s", entry.dump.name, reason)
            skipped.append(entry.dump.name)
            continue
        output.line(f"Newest valid backup of '{kit.params.dbname}': {entry.dump.name}")
        return rollback_plan.plan(kit, entry.dump, meta, in_place=in_place, lock_timeout_s=lock_timeout_s)
    detail = f" (skipped: {', '.join(skipped)})" if skipped else ""
    raise OperationFailed(
        "no-valid-backup",
        f"no valid backup of database '{kit.params.dbname}' in {kit.paths.backups}{detail}; "
        "nothing was changed",
        "take one with ./production_migrate.sh backup, or restore a copy kept elsewhere",
    )


@click.command("emergency-rollback")
@yes_option
@rollback_dry_run_option
@restore_options
@database_option
def command(yes: bool, dry_run: bool, in_place: bool, lock_timeout: float, alias: str) -> None:
    """Roll back to the newest backup that validates, skipping (and naming) any that do not."""
    kit = runtime.start("emergency-rollback", alias, log_name="rollback", apps=False)
    with audited(kit, "emergency-rollback"):
        require_confirmation_channel(yes, dry_run)
        if pitr.enabled(kit):
            _, meta = pitr.newest_point(kit)
            pitr.rollback(kit, meta, yes=yes, dry_run=dry_run, side=None, port=None)
            return
        with deploy_lock.hold(kit.params, "rollback"):
            repair(kit, dry_run)
            plan = newest_valid_plan(kit, in_place=in_place, lock_timeout_s=lock_timeout)
            act(kit, plan, yes=yes, dry_run=dry_run, reason="emergency")
