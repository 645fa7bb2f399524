"""`python rollback_manager.py COMMAND`: the rollback manager's click commands.

Commands are imported when they run, so listing or validating backups does not pay for the
restore machinery (and the database driver) that a rollback needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import click

from migration_tools import __version__
from migration_tools.clirun import run_group

# command name -> "module:attribute"
COMMANDS = {
    "list-backups": "migration_tools.rollback_cli_catalog:list_backups_cmd",
    "validate-backup": "migration_tools.rollback_cli_catalog:validate_backup_cmd",
    "rollback": "migration_tools.rollback_cli_restore:rollback_cmd",
    "emergency-rollback": "migration_tools.rollback_cli_restore:emergency_rollback_cmd",
    "cleanup-backups": "migration_tools.rollback_cli_catalog:cleanup_backups_cmd",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollback_manager.py")
def rollback_group() -> None:
    """List, validate, restore and clean up the kit's backups."""


def main(argv: Sequence[str] | None = None) -> int:
    return run_group(rollback_group, argv)
