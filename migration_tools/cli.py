"""`python -m migration_tools COMMAND`: thin click commands over the kit's modules."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import click

# Heavy modules (Django's migration machinery) are imported inside the commands that use them,
# so that commands which need none of it (backup, --help) start fast.
from migration_tools import __version__, preflight, runtime, ui
from migration_tools.clirun import database_option, run_group
from migration_tools.errors import EXIT_FAILED

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

    from migration_tools.deploy import DeployReport
    from migration_tools.migrate_run import MigrateOptions



@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migration_tools")
def main_group() -> None:
    """Production-safe migrations for Django on PostgreSQL."""


@main_group.command("status")
@database_option
def status_cmd(alias: str) -> None:
    """Show the connection, server, migration counts, newest backup and pre-flight results."""
    from migration_tools import status

    kit = runtime.start("status", alias)
    st = status.collect(kit)
    ui.line(f"Connection: {st.connection}")
    ui.line(f"Server: PostgreSQL {st.server_version}")
    ui.line("Migrations (applied / pending):")
    for app in st.apps:
        ui.line(f"  {app.app}: {app.applied} applied, {app.pending} pending")
    ui.line(f"Newest backup: {st.newest_backup}")
    ui.line("Pre-flight:")
    for check in st.checks.checks:
        ui.mark(check.level, f"{check.name}: {check.detail}")
    kit.log.info("status pending=%d", st.pending_total)
    ui.verdict(True, f"{st.pending_total} migration(s) pending on {st.connection}")


@main_group.command("check-migrations")
@database_option
def check_migrations_cmd(alias: str) -> None:
    """List pending migrations in plan order; fail on missing migrations or conflicts."""
    from migration_tools import checks_migrations

    kit = runtime.start("check-migrations", alias)
    preflight.run(kit.params, need_tools=False)
    result = checks_migrations.run(alias)
    if result.pending:
        ui.line(f"Pending migrations ({len(result.pending)}), in plan order:")
        for index, (app, name) in enumerate(result.pending, 1):
            ui.line(f"  {index}. {app}.{name}")
        per_app: dict[str, int] = {}
        for app, _name in result.pending:
            per_app[app] = per_app.get(app, 0) + 1
        ui.line("Per app: " + ", ".join(f"{app} {count}" for app, count in sorted(per_app.items())))
    if result.missing:
        for app, ops in sorted(result.missing.items()):
            ui.mark("fail", f"{app}: model changes without a migration: {'; '.join(ops)}")
        raise checks_migrations.missing_error(result.missing)
    kit.log.info("pending=%d", len(result.pending))
    if result.pending:
        ui.verdict(True, f"{len(result.pending)} migration(s) pending, no conflicts")
    else:
        ui.verdict(True, "no pending migrations: the database is up to date")


monitor_options = [
    click.option("--monitor/--no-monitor", default=False,
                 help="Sample CPU, memory, disk and the database while migrating; show it live."),
    click.option("--interval", type=click.FloatRange(min=0.05), default=5.0, show_default=True,
                 metavar="SECONDS", help="Seconds between monitoring samples."),
]


def with_monitor_options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(monitor_options):
        func = option(func)
    return func


def migrate_options(monitor: bool, interval: float, **flags: bool) -> MigrateOptions:
    from migration_tools.migrate_run import MigrateOptions

    return MigrateOptions(
        backup=flags.get("backup", True),
        auto_rollback=flags.get("auto_rollback", True),
        monitor=monitor,
        interval=interval,
        deep_backup=os.environ.get("PM_PROFILE") == "enhanced",
    )


def print_progress(event: str, migration: Migration, index: int, total: int, seconds: float) -> None:
    label = f"[{index}/{total}] {migration.app_label}.{migration.name}"
    if event == "start":
        ui.live(f"{label} ...")
    else:
        ui.end_live()
        ui.line(f"{label} applied in {seconds:.2f}s")


@main_group.command("migrate")
@database_option
@with_monitor_options
@click.option("--no-backup", is_flag=True, help="Skip the pre-migrate backup.")
@click.option("--no-auto-rollback", is_flag=True, help="On failure, leave this run's migrations applied.")
@click.option("--dry-run", is_flag=True, help="Print the plan and each migration's SQL; apply nothing.")
def migrate_cmd(
    alias: str, monitor: bool, interval: float, no_backup: bool, no_auto_rollback: bool, dry_run: bool
) -> None:
    """Back up, apply the pending migrations with progress, undo this run's migrations on failure."""
    from migration_tools import migrate_run

    kit = runtime.start("migrate", alias)
    preflight.run(kit.params, need_tools=not (dry_run or no_backup))
    if dry_run:
        count = migrate_run.dry_run(alias, ui.line)
        ui.verdict(True, f"dry run: would apply {count} migration(s); nothing was changed")
        return
    options = migrate_options(monitor, interval, backup=not no_backup,
                              auto_rollback=not no_auto_rollback)
    started = time.monotonic()
    outcome = migrate_run.run(kit, options, ui.line, print_progress, warn=ui.warn)
    elapsed = time.monotonic() - started
    if outcome.report:
        ui.line(f"Performance report: {outcome.report}")
    kit.log.info("migrate done applied=%d in %.1fs", len(outcome.applied), elapsed)
    if outcome.applied:
        ui.verdict(True, f"applied {len(outcome.applied)} migration(s) in {elapsed:.1f}s")
    else:
        ui.verdict(True, "nothing to apply: the database is up to date")


@main_group.command("verify-data")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def verify_data_cmd(alias: str, as_json: bool) -> None:
    """Check record counts, orphaned rows, potential duplicates and invalid indexes."""
    from migration_tools import verify

    kit = runtime.start("verify-data", alias)
    preflight.run(kit.params, need_tools=False)
    report = verify.verify_data_integrity(kit.params, kit.settings, kit.alias)
    kit.log.info("verify-data ok=%s orphans=%d duplicates=%d", report.ok, report.orphan_total,
                 report.duplicate_total)
    if as_json:
        ui.line(json.dumps(report.as_dict(), indent=2))
    else:
        for count in report.counts:
            ui.mark("ok", f"{count.label}: {ui.n(count.rows)} records")
        ui.line("Data integrity check results:")
        orphans = verify.orphans_by_model(report)
        for label, plural in report.plural_names.items():
            ui.line(f"Orphan {plural}: {ui.n(orphans.get(label, 0))}")
        for orphan in report.orphans:
            if orphan.rows:
                ui.mark("fail", f"{orphan.model}.{orphan.field}: {ui.n(orphan.rows)} row(s) with no parent")
        ui.line(f"Potential duplicates: {ui.n(report.duplicate_total)}")
        for dup in report.duplicates:
            if dup.extra_rows:
                ui.line(f"  {dup.model} on ({', '.join(dup.fields)}): {ui.n(dup.extra_rows)}")
        ui.line(f"Invalid indexes: {', '.join(report.invalid_indexes) or 'none'}")
        ui.verdict(report.ok, "data integrity verified" if report.ok else "data integrity check failed")
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


@main_group.command("full-deploy")
@database_option
@with_monitor_options
def full_deploy_cmd(alias: str, monitor: bool, interval: float) -> None:
    """Pre-flight, check-migrations, backup, migrate, verify-data, check --deploy, then a summary."""
    from migration_tools import deploy

    kit = runtime.start("full-deploy", alias)
    options = migrate_options(monitor, interval, backup=False)
    report = deploy.new_report()
    started = time.monotonic()
    try:
        deploy.full_deploy(kit, options, ui.line, print_progress, report)
    finally:
        print_deploy_summary(kit, report, time.monotonic() - started)


def print_deploy_summary(kit: runtime.Kit, report: DeployReport, seconds: float) -> None:
    ui.line("")
    ui.line("Deployment summary")
    for step in report.steps:
        mark = {"ok": "ok", "failed": "fail", "skipped": "warn"}[step.outcome]
        detail = f" - {step.detail}" if step.detail else ""
        ui.mark(mark, f"{step.name:<17} {step.outcome:<8} {step.seconds:6.2f}s{detail}")
        kit.log.info("full-deploy step %s %s %.2fs %s", step.name, step.outcome, step.seconds, step.detail)
    ui.line(f"Backup: {report.backup or 'none'}")
    ui.line(f"Performance report: {report.report or 'none (run with --monitor)'}")
    ui.line(f"Total: {seconds:.1f}s")
    if report.ok:
        ui.verdict(True, report.verdict)


# Commands defined in other modules register here, one line each.
# -- command registrations --
from migration_tools import cli_backup  # noqa: E402

main_group.add_command(cli_backup.backup_cmd)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit code instead of exiting, so tests can call it."""
    return run_group(main_group, argv)


if __name__ == "__main__":
    sys.exit(main())
