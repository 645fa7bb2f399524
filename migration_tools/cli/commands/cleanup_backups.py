"""`cleanup-backups`: retention over valid backups and kept databases; leftovers of interrupted
backups, rollbacks and deep checks removed."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import click

from migration_tools.backup import retention
from migration_tools.backup import side_databases as sides
from migration_tools.cli import output, pitr
from migration_tools.cli.commands.list_backups import created_text
from migration_tools.cli.options import database_option
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
from migration_tools.core.errors import BadInput, KitError, OperationFailed
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size
from migration_tools.pg import databases, deploy_lock


@click.command("cleanup-backups")
@click.option(
    "--keep", type=int, default=None, metavar="N",
    help="Valid backups, and kept replaced databases, to keep per database (default: settings, 7).",
)
@click.option(
    "--older-than",
    "older_than",
    type=float,
    default=None,
    metavar="DAYS",
    help="Remove only backups and kept databases older than this many days (and beyond --keep).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@database_option
def command(keep: int | None, older_than: float | None, dry_run: bool, alias: str) -> None:
    """Remove old backups and kept databases beyond retention, and leftovers of interrupted commands."""
    kit = runtime.start("cleanup-backups", alias, log_name="rollback", apps=False)
    with audited(kit, "cleanup-backups"):
        if pitr.enabled(kit):
            pitr.cleanup(kit, dry_run)
            return
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
            dropped = _databases(kit, keep=keep, older_than=older_than, dry_run=True)
            kit.log.info("cleanup-backups outcome=ok dry-run would remove %s%s", summary, dropped)
            output.verdict(True, f"dry run: would remove {summary}{dropped}; nothing was changed")
            return
        removed = retention.apply_cleanup(plan, kit.paths.rollback_scripts)
        for path in removed:
            kit.log.info("cleanup-backups removed %s", path)
        dropped = _databases(kit, keep=keep, older_than=older_than, dry_run=False)
        kit.log.info("cleanup-backups outcome=ok removed %s%s", summary, dropped)
        output.verdict(True, f"removed {summary}{dropped}")


def _databases(kit: Kit, *, keep: int, older_than: float | None, dry_run: bool) -> str:
    """Retention over the kept databases, leftovers dropped; the verdict's part about them ('' if none).

    A real run holds the deploy lock, so no rollback is restoring into a copy it drops. When the
    server cannot be reached or another run holds the lock, the files are still cleaned up.
    """
    now = datetime.now(timezone.utc)
    try:
        if dry_run:
            found = sides.inspect(kit.params, "cleanup-backups")
            holder = deploy_lock.current_holder(kit.params) if found.restore_copies else ""
            plan = sides.plan_drops(found, keep=keep, older_than_days=older_than, now=now, lock_holder=holder)
            for side in plan.drop:
                output.line(f"Would drop database '{side.name}' ({sides.describe(side, now)})")
            dropped, failed = plan.drop, []
        else:
            with deploy_lock.hold(kit.params, "cleanup-backups"), databases.maintenance(
                kit.params, "cleanup-backups"
            ) as conn:
                found = sides.survey(conn, kit.params.dbname)
                plan = sides.plan_drops(found, keep=keep, older_than_days=older_than, now=now, lock_holder="")

                def say(side: sides.SideDatabase) -> None:
                    output.line(f"Dropping database '{side.name}' ({sides.describe(side, now)})")
                    kit.log.info("cleanup-backups dropping database %s (%s)", side.name, side.kind)

                dropped, failed = sides.apply_drops(conn, plan, say)
    except KitError as exc:
        output.warn(f"kept and leftover databases not looked at: {exc.message}; only the files were")
        kit.log.warning("cleanup-backups databases skipped: %s [%s]", exc.message, exc.error_id)
        return ""
    for side, why in plan.skipped:
        output.warn(f"left database '{side.name}': {why}")
        kit.log.warning("cleanup-backups left database %s: %s", side.name, why)
    for side in dropped if not dry_run else []:
        kit.log.info("cleanup-backups dropped database %s", side.name)
    if failed:
        for side, why in failed:
            kit.log.error("cleanup-backups could not drop database %s: %s", side.name, why)
        side, why = failed[0]
        raise OperationFailed(
            "cleanup-drop",
            f"could not drop {len(failed)} database(s), first '{side.name}': {why}",
            "drop it as its owner or a superuser, or run cleanup-backups again",
        )
    if not (found.kept or found.restore_copies or found.scratch):
        return ""
    kept_gone = sum(1 for d in dropped if d.kind == sides.KEPT)
    verb = "would drop" if dry_run else "dropped"
    return (
        f"; {verb} {kept_gone} kept database(s) and {len(dropped) - kept_gone} leftover database(s), "
        f"keeping {len(plan.keep)} kept database(s)"
    )
