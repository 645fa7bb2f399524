"""`migrate`: back up, apply the pending plan with progress, undo this run on failure."""

from __future__ import annotations

import time

import click

from migration_tools.cli import output, progress, reporting
from migration_tools.cli.all_databases import all_databases_option
from migration_tools.cli.migrating import migrate_options
from migration_tools.cli.options import commit_each_option, database_option, monitor_options
from migration_tools.core import runtime


@click.command("migrate")
@database_option
@all_databases_option("migrate")
@monitor_options
@click.option("--no-backup", is_flag=True, help="Skip the pre-migrate backup.")
@click.option("--no-auto-rollback", is_flag=True, help="On failure, leave this run's migrations applied.")
@commit_each_option
@click.option("--dry-run", is_flag=True, help="Print the plan and each migration's SQL; apply nothing.")
def command(
    alias: str, monitor: bool, interval: float, no_backup: bool, no_auto_rollback: bool, commit_each: bool,
    dry_run: bool,
) -> None:
    """Back up, apply the pending migrations with progress, undo this run's migrations on failure."""
    from migration_tools.deploy import migrate, preflight

    kit = runtime.start("migrate", alias)
    checked = preflight.run(kit.params, need_tools=not (dry_run or no_backup))
    if checked.server_warning:
        output.warn(checked.server_warning)
    if dry_run:
        count = migrate.dry_run(alias, output.show)
        output.verdict(True, f"dry run: would apply {count} migration(s); nothing was changed")
        return
    options = migrate_options(monitor, interval, backup=not no_backup, auto_rollback=not no_auto_rollback,
                              commit_each=commit_each)
    started = time.monotonic()
    with reporting.session(kit, "migrate", enabled=monitor, interval=interval) as session, \
            progress.watching(kit.params, files=kit.paths.backups):
        outcome = migrate.MigrateOutcome()
        session.section("backup", lambda: reporting.backup_section(outcome.backup))
        migrate.run(kit, options, output.show, outcome=outcome, monitor=session.monitor)
        session.verdict = (f"applied {len(outcome.applied)} migration(s)" if outcome.applied
                           else "nothing to apply")
    elapsed = time.monotonic() - started
    kit.log.info("migrate done applied=%d in %.1fs", len(outcome.applied), elapsed)
    if outcome.applied:
        output.verdict(True, f"applied {len(outcome.applied)} migration(s) in {elapsed:.1f}s")
    else:
        output.verdict(True, "nothing to apply: the database is up to date")
