"""`cleanup-backups`: retention over valid backups; leftovers of interrupted backups removed."""

from __future__ import annotations

import math

import click

from migration_tools.backups import retention
from migration_tools.cli import output
from migration_tools.cli.commands.list_backups import created_text
from migration_tools.cli.options import database_option
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
from migration_tools.core.errors import BadInput
from migration_tools.core.sizes import human_size


@click.command("cleanup-backups")
@click.option(
    "--keep", type=int, default=None, metavar="N", help="Valid backups to keep (default: settings, 7)."
)
@click.option(
    "--older-than",
    "older_than",
    type=float,
    default=None,
    metavar="DAYS",
    help="Remove only backups older than this many days (and beyond --keep).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@database_option
def command(keep: int | None, older_than: float | None, dry_run: bool, alias: str) -> None:
    """Remove old valid backups beyond retention (per database) and leftovers of interrupted backups."""
    kit = runtime.start("cleanup-backups", alias, log_name="rollback", apps=False)
    with audited(kit, "cleanup-backups"):
        keep = kit.settings.retention if keep is None else keep
        if keep < 1:
            raise BadInput(
                "keep-invalid",
                f"--keep {keep} would leave no backup (the newest valid backup is never removed)",
                "pass --keep 1 or more",
            )
        if older_than is not None and not (math.isfinite(older_than) and older_than >= 0):
            what = "is negative" if older_than < 0 else "is not a number of days"
            raise BadInput("older-than-invalid", f"--older-than {older_than:g} {what}", "pass 0 or more days")
        plan = retention.plan_cleanup(
            kit.paths.backups, kit.paths.rollback_scripts, keep=keep, older_than_days=older_than
        )
        verb = "Would remove" if dry_run else "Removing"
        for entry in plan.remove:
            output.line(f"{verb} {entry.dump.name} (created {created_text(entry)}, {human_size(entry.size)})")
        for path in plan.leftovers:
            output.line(f"{verb} leftover {path.name} (from an interrupted backup)")
        for path in plan.busy:
            output.warn(f"skipped {path.name}: a running backup is writing it")
        for entry in plan.invalid:
            output.warn(
                f"kept invalid backup {entry.dump.name} ({entry.reason}); inspect it or delete it by hand"
            )
        mine = [e for e in plan.keep if e.meta is not None and e.meta.database == kit.params.dbname]
        newest = mine[0].dump.name if mine else "none"
        summary = (
            f"{len(plan.remove)} backup(s) and {len(plan.leftovers)} leftover file(s); "
            f"keeping {len(plan.keep)} valid backup(s), newest {newest}"
        )
        if dry_run:
            kit.log.info("cleanup-backups outcome=ok dry-run would remove %s", summary)
            output.verdict(True, f"dry run: would remove {summary}; nothing was changed")
            return
        removed = retention.apply_cleanup(plan, kit.paths.rollback_scripts)
        for path in removed:
            kit.log.info("cleanup-backups removed %s", path)
        kit.log.info("cleanup-backups outcome=ok removed %s", summary)
        output.verdict(True, f"removed {summary}")
