"""`python -m migration_tools backup`: parse, call backup.create_backup, narrate."""

from __future__ import annotations

import click

from migration_tools import backup, runtime, ui
from migration_tools.errors import KitError


@click.command("backup")
@click.option(
    "--database",
    "alias",
    default="default",
    show_default=True,
    metavar="ALIAS",
    help="Django database alias to back up.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also restore into a scratch database and compare row counts (on in the enhanced profile).",
)
def backup_cmd(alias: str, deep: bool) -> None:
    """Take a verified, compressed pg_dump backup with metadata and a rollback script."""
    deep = deep or backup.profile() == "enhanced"
    kit = runtime.start("backup", alias, apps=False)

    def step(event: str, text: str) -> None:
        if event == "live":
            ui.line(text)
        elif event == "warn":
            ui.warn(text)
        else:
            ui.mark("ok", text)

    ui.line(f"Backing up {kit.params.describe()} (reason: manual{', deep validation' if deep else ''})")
    try:
        result = backup.create_backup(kit, "manual", deep=deep, on_step=step)
    except KitError as exc:
        kit.log.error("backup outcome=failed %s", exc.message)
        raise
    meta = result.metadata
    root = kit.paths.root
    ui.line(f"File: {result.dump.relative_to(root)}")
    ui.line(f"Size: {ui.n(meta.size_bytes)} bytes ({backup.human_size(meta.size_bytes)})")
    ui.line(f"Duration: {result.seconds:.2f}s")
    ui.line(f"SHA-256: {meta.sha256}")
    ui.line(f"Rollback script: {result.script.relative_to(root)}")
    checks = "full read" + (" and test restore" if meta.validated.get("deep") else "")
    kit.log.info("backup outcome=ok file=%s", meta.file)
    ui.verdict(
        True,
        f"backup {meta.file} of {meta.database} is complete and verified ({checks}), "
        f"{backup.human_size(meta.size_bytes)} in {result.seconds:.2f}s",
    )
