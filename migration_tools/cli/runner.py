"""Shared by the kit's click CLIs: a group that loads commands on first use, and running it.

`run_group` is the one place where the kit's errors become exit codes and one-line messages.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence

import click

from migration_tools.cli.usage_errors import usage_failure
from migration_tools.core import signals
from migration_tools.core.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    KitError,
    OperationFailed,
    prog_name,
    status_command,
)
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

    def invoke(self, ctx: click.Context) -> object:
        """A command that did not turn an interruption into its own line gets this one."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise OperationFailed(
                "interrupted",
                f"interrupted by {signals.describe(exc)} before the command finished",
                f"run {status_command()} to see where the database stands",
            ) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.commands_table.get(cmd_name)
        if module is None:
            return None
        command = importlib.import_module(f"migration_tools.cli.commands.{module}").command
        assert isinstance(command, click.Command)
        return command


def run_group(group: click.Group, argv: Sequence[str] | None = None) -> int:
    """Invoke `group`; returns the exit code instead of exiting, so tests can call it."""
    args = list(argv) if argv is not None else None
    with contextlib.suppress(ValueError):  # not the main thread (a test calling main())
        signals.install()
    try:
        result = group.main(args=args, standalone_mode=False)
    except KitError as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        # The kit's line, worded as the shell scripts word it, then click's usage line.
        click.echo(usage_failure(exc, group, sys.argv[1:] if args is None else args), err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(redact(f"{prog_name()}: {exc.format_message()}; fix it, then run the command again "
                          "[click-error]"), err=True)
        return exc.exit_code
    except click.Abort:
        click.echo(f"{prog_name()}: interrupted before the command finished; see the log file for where "
                   "it stopped, then run the command again [interrupted]", err=True)
        return EXIT_FAILED
    except Exception as exc:
        # A bug or an unforeseen fault: one redacted line for the operator, the traceback in the log.
        logging.getLogger("migration_kit").exception("unexpected error")
        click.echo(
            redact(f"{prog_name()}: unexpected error: {type(exc).__name__}: {exc}; "
                   f"the traceback is in {_log_file()} [internal]"),
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


def _log_file() -> str:
    """The audit log the command writes to (where the traceback went)."""
    for handler in logging.getLogger("migration_kit").handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return "the log file (none was opened)"

