"""`python -m migration_tools COMMAND`: thin click commands over the kit's modules."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from django.db.migrations.migration import Migration

from migration_tools import __version__, apply, checks_migrations, preflight, runtime, status, ui
from migration_tools.clirun import run_group
from migration_tools.errors import KitError, OperationFailed

database_option = click.option(
    "--database",
    "alias",
    default="default",
    show_default=True,
    metavar="ALIAS",
    help="Django database alias to work on.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migration_tools")
def main_group() -> None:
    """Production-safe migrations for Django on PostgreSQL."""


@main_group.command("status")
@database_option
def status_cmd(alias: str) -> None:
    """Show the connection, server, migration counts, newest backup and pre-flight results."""
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
    kit = runtime.start("check-migrations", alias)
    preflight.run(kit.params, need_tools=False)
    result = checks_migrations.run(alias)
    if result.pending:
        ui.line(f"Pending migrations ({len(result.pending)}), in plan order:")
        for index, (app, name) in enumerate(result.pending, 1):
            ui.line(f"  {index}. {app}.{name}")
    if result.missing:
        for app, ops in sorted(result.missing.items()):
            ui.mark("fail", f"{app}: model changes without a migration: {'; '.join(ops)}")
        raise checks_migrations.missing_error(result.missing)
    kit.log.info("pending=%d", len(result.pending))
    if result.pending:
        ui.verdict(True, f"{len(result.pending)} migration(s) pending, no conflicts")
    else:
        ui.verdict(True, "no pending migrations: the database is up to date")


@main_group.command("migrate")
@database_option
def migrate_cmd(alias: str) -> None:
    """Apply the pending migrations with per-migration progress."""
    kit = runtime.start("migrate", alias)
    preflight.run(kit.params)

    def progress(event: str, migration: Migration, index: int, total: int, seconds: float) -> None:
        label = f"[{index}/{total}] {migration.app_label}.{migration.name}"
        if event == "start":
            ui.live(f"{label} ...")
            kit.log.info("apply start %s.%s", migration.app_label, migration.name)
        else:
            ui.end_live()
            ui.line(f"{label} applied in {seconds:.2f}s")
            kit.log.info("applied %s.%s in %.3fs", migration.app_label, migration.name, seconds)

    try:
        done = apply.apply_pending(alias, progress)
    except KitError:
        raise
    except Exception as exc:
        ui.end_live()
        kit.log.error("migrate failed: %s", exc)
        raise OperationFailed(
            "migrate-failed", f"migration failed: {exc}", "see migration.log"
        ) from exc
    kit.log.info("migrate done applied=%d", len(done))
    ui.verdict(True, f"applied {len(done)} migration(s)" if done else "nothing to apply")


# Commands defined in other modules register here, one line each.
# -- command registrations --


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit code instead of exiting, so tests can call it."""
    return run_group(main_group, argv)


if __name__ == "__main__":
    sys.exit(main())
