"""`python rollback_manager.py COMMAND`: list, validate, restore and clean up backups."""

from __future__ import annotations

from collections.abc import Sequence

import click

from migration_tools import __version__
from migration_tools.cli.runner import LazyGroup, run_group

# command name -> module in migration_tools.cli.commands
COMMANDS = {
    "list-backups": "list_backups",
    "validate-backup": "validate_backup",
    "rollback": "rollback",
    "emergency-rollback": "emergency_rollback",
    "cleanup-backups": "cleanup_backups",
    "report": "report",
}


@click.group(
    cls=LazyGroup, commands_table=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="rollback_manager.py")
def rollback_group() -> None:
    """List, validate, restore and clean up the kit's backups; show the runs' reports."""


def main(argv: Sequence[str] | None = None) -> int:
    return run_group(rollback_group, argv)
