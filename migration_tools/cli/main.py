"""`python -m migration_tools COMMAND`: the commands of production_migrate.sh, one file each."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from migration_tools import __version__
from migration_tools.cli.runner import LazyGroup, run_group

# command name -> module in migration_tools.cli.commands
COMMANDS = {
    "status": "status",
    "check-migrations": "check_migrations",
    "backup": "backup",
    "migrate": "migrate",
    "verify-data": "verify_data",
    "zero-downtime": "zero_downtime",
    "full-deploy": "full_deploy",
}


@click.group(
    cls=LazyGroup, commands_table=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="migration_tools")
def main_group() -> None:
    """Production-safe migrations for Django on PostgreSQL."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit code instead of exiting, so tests can call it."""
    return run_group(main_group, argv)


if __name__ == "__main__":
    sys.exit(main())
