"""`python rollback_manager.py COMMAND`: the rollback manager's click commands."""

from __future__ import annotations

from collections.abc import Sequence

import click

from migration_tools import __version__
from migration_tools.clirun import run_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollback_manager.py")
def rollback_group() -> None:
    """List, validate, restore and clean up the kit's backups."""


# Commands defined in other modules register here, one line each.
# -- command registrations --
from migration_tools import rollback_cli_catalog  # noqa: E402

rollback_group.add_command(rollback_cli_catalog.list_backups_cmd)
rollback_group.add_command(rollback_cli_catalog.validate_backup_cmd)
rollback_group.add_command(rollback_cli_catalog.cleanup_backups_cmd)
from migration_tools.rollback_cli_restore import emergency_rollback_cmd, rollback_cmd  # noqa: E402

rollback_group.add_command(rollback_cmd)
rollback_group.add_command(emergency_rollback_cmd)


def main(argv: Sequence[str] | None = None) -> int:
    return run_group(rollback_group, argv)
