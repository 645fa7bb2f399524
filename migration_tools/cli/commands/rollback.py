"""`rollback FILENAME`: restore one backup of this database, all or nothing, keeping what it replaces."""

from __future__ import annotations

from pathlib import Path

import click

from migration_tools.backup import inventory
from migration_tools.cli import pitr
from migration_tools.cli.options import (
    database_option,
    pitr_side_options,
    rollback_dry_run_option,
    yes_option,
)
from migration_tools.cli.restoring import act, repair, require_confirmation_channel, restore_options
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
from migration_tools.core.errors import BadInput
from migration_tools.pg import deploy_lock
from migration_tools.restore import plan as rollback_plan


@click.command("rollback")
@click.argument("filename")
@yes_option
@rollback_dry_run_option
@restore_options
@pitr_side_options
@database_option
def command(filename: str, yes: bool, dry_run: bool, in_place: bool, lock_timeout: float, alias: str,
            side_datadir: Path | None, side_port: int | None) -> None:
    """Replace the database with backup FILENAME (a name in backups/), keeping the old state.

    The backup must validate (checksum and every data block) and be of this database. With
    CREATEDB the backup is restored into a new database, verified, and swapped in; the old
    database is kept renamed. Without it (or with --in-place), a safety backup is taken and the
    restore runs in place in one transaction. The plan shown first names the rows written since
    the backup, which the rollback discards.
    """
    kit = runtime.start("rollback", alias, log_name="rollback", apps=False)
    with audited(kit, f"rollback {filename}"):
        if pitr.is_point(filename):
            require_confirmation_channel(yes, dry_run)
            _, meta = pitr.resolve(kit, filename)
            pitr.rollback(kit, meta, yes=yes, dry_run=dry_run, side=side_datadir, port=side_port)
            return
        if side_datadir is not None or side_port is not None:
            raise BadInput("side-needs-pgbackrest", "--side-datadir and --side-port restore a pgBackRest "
                           "restore point; nothing was changed", "pass a restore point, or drop them")
        dump = inventory.resolve(filename, kit.paths.backups)
        require_confirmation_channel(yes, dry_run)
        with deploy_lock.hold(kit.params, "rollback"):
            repair(kit, dry_run)
            plan = rollback_plan.plan(kit, dump, in_place=in_place, lock_timeout_s=lock_timeout)
            act(kit, plan, yes=yes, dry_run=dry_run, reason="manual")
