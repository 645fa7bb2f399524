"""`python -m migration_tools backup`: parse, call backup.create_backup, narrate."""

from __future__ import annotations

import click

from migration_tools.cli import output, pitr, progress
from migration_tools.cli.all_databases import all_databases_option
from migration_tools.cli.options import database_option
from migration_tools.core import runtime
from migration_tools.core.errors import KitError
from migration_tools.core.sizes import human_size


@click.command("backup")
@database_option
@all_databases_option("backup")
@click.option(
    "--deep",
    is_flag=True,
    help="Also restore into a scratch database and compare row counts (on in the enhanced profile).",
)
def command(alias: str, deep: bool) -> None:
    """Take a verified, compressed pg_dump backup with metadata and a rollback script."""
    kit = runtime.start("backup", alias, apps=False)
    if pitr.enabled(kit):
        output.line(f"Backing up the cluster of {kit.params.describe()} with pgBackRest (reason: manual)")
        if deep:
            output.warn("--deep does not apply to the pgBackRest tier (validate-backup runs its verify)")
        pitr.backup(kit)
        return

    output.line(f"Backing up {kit.params.describe()} (reason: manual{', deep validation' if deep else ''})")
    from migration_tools.backup import create as backup

    try:
        with progress.watching(kit.params, files=kit.paths.backups):
            result = backup.create_backup(kit, "manual", deep=deep, report=output.show)
    except KitError as exc:
        kit.log.error("backup outcome=failed %s", exc.message)
        raise
    meta = result.metadata
    root = kit.paths.root
    output.line(f"File: {result.dump.relative_to(root)}")
    output.line(f"Size: {output.n(meta.size_bytes)} bytes ({human_size(meta.size_bytes)})")
    output.line(f"Duration: {result.seconds:.2f}s")
    output.line(f"SHA-256: {meta.sha256}")
    output.line(f"Rollback script: {result.script.relative_to(root)}")
    checks = "full read" + (" and test restore" if meta.validated.get("deep") else "")
    kit.log.info("backup outcome=ok file=%s", meta.file)
    output.verdict(
        True,
        f"backup {meta.file} of {meta.database} is complete and verified ({checks}), "
        f"{human_size(meta.size_bytes)} in {result.seconds:.2f}s",
    )
