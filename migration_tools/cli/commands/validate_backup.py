"""`validate-backup PATH`: is this backup restorable? Shallow, full-read or deep check."""

from __future__ import annotations

import click

from migration_tools.backup import inventory, validate
from migration_tools.cli import output, pitr, progress, reporting
from migration_tools.cli.options import database_option
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
from migration_tools.core.errors import OperationFailed

PROG = "python rollback_manager.py"


@click.command("validate-backup")
@click.argument("path")
@click.option("--full", is_flag=True, help="Also decompress every data block (pg_restore -f /dev/null).")
@click.option(
    "--deep",
    is_flag=True,
    help="Also restore into a scratch database and compare row counts (implies --full).",
)
@database_option
def command(path: str, full: bool, deep: bool, alias: str) -> None:
    """Check a backup: metadata, SHA-256, table of contents; exit 0 valid, 1 invalid."""
    kit = runtime.start("validate-backup", alias, log_name="rollback", apps=False)
    with audited(kit, f"validate-backup {path}"):
        if pitr.is_point(path):
            pitr.validate(kit, path)
            return
        dump = inventory.resolve(path, kit.paths.backups, anywhere=True)
        level = "deep" if deep else "full" if full else "shallow"
        output.line(f"Validating {dump} ({level}) ...")
        if deep:
            from migration_tools.backup.deep import validate_deep  # the driver is needed only here

            with progress.watching(kit.params, expected_rows=reporting.backup_rows(dump)):
                result = validate_deep(dump, kit.params, kit.settings.backup_jobs)
        else:
            result = validate.validate(dump, full=full, params=kit.params, jobs=kit.settings.backup_jobs)
        for text in result.passed:
            output.mark("ok", text)
        for text in result.warnings:
            output.warn(text)
            kit.log.warning("validate-backup %s", text)
        if result.unavailable:
            output.mark("warn", f"deep check not run: {result.unavailable}")
            raise OperationFailed(
                "deep-check-unavailable",
                f"the deep check of {dump.name} could not run: {result.unavailable}; the backup passed "
                "the full check (every data block read), which says nothing against it",
                "grant the role CREATEDB for test restores, or run validate-backup --full",
            )
        if not result.ok:
            output.mark("fail", result.reason)
            raise OperationFailed(
                "backup-invalid",
                f"backup {dump.name} is invalid: {result.reason}",
                f"do not restore it; run {PROG} list-backups and pick a valid one",
            )
        kit.log.info("validate-backup outcome=ok file=%s level=%s", dump.name, level)
        output.verdict(True, f"backup {dump.name} is valid ({level} check)")
