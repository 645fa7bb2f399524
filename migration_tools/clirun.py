"""Shared by the kit's click CLIs: the --database option, and running a group with the kit's exit codes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import click

from migration_tools.errors import EXIT_FAILED, EXIT_USAGE, KitError, prog_name
from migration_tools.redact import redact

database_option = click.option(
    "--database",
    "alias",
    default="default",
    show_default=True,
    metavar="ALIAS",
    help="Django database alias to work on.",
)


def run_group(group: click.Group, argv: Sequence[str] | None = None) -> int:
    """Invoke `group`; returns the exit code instead of exiting, so tests can call it."""
    try:
        result = group.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except KitError as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_FAILED
    except Exception as exc:
        # A bug or an unforeseen fault: one redacted line for the operator, the traceback in the log.
        logging.getLogger("migration_kit").exception("unexpected error")
        click.echo(
            redact(f"{prog_name()}: unexpected error: {type(exc).__name__}: {exc}; "
                   "the traceback is in the log file [internal]"),
            err=True,
        )
        return EXIT_FAILED
    return result if isinstance(result, int) else 0
