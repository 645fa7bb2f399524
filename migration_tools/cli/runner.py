"""Shared by the kit's click CLIs: a group that loads commands on first use, and running it.

`run_group` is the one place where the kit's errors become exit codes and one-line messages.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator, Sequence

import click

from migration_tools.core.errors import EXIT_FAILED, EXIT_USAGE, KitError, prog_name
from migration_tools.core.redact import redact
from migration_tools.core.runtime import Kit


class LazyGroup(click.Group):
    """A group whose commands live in `migration_tools.cli.commands.<name>` and load on first use.

    Listing or validating backups does not pay for Django's migration machinery or the restore
    code; `--help` of the group imports nothing but click.
    """

    def __init__(self, *args: object, commands_table: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.commands_table = commands_table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands_table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.commands_table.get(cmd_name)
        if module is None:
            return None
        command = importlib.import_module(f"migration_tools.cli.commands.{module}").command
        assert isinstance(command, click.Command)
        return command


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


@contextlib.contextmanager
def audited(kit: Kit, what: str) -> Iterator[None]:
    """Log that a command was asked for and how it ended, whatever the ending."""
    kit.log.info("%s requested", what)
    try:
        yield
    except KitError as exc:
        kit.log.error("%s failed: %s [%s] exit=%d", what, exc.message, exc.error_id, exc.exit_code)
        raise
    except BaseException as exc:
        kit.log.error("%s failed: %s", what, type(exc).__name__)
        raise
    kit.log.info("%s succeeded", what)
