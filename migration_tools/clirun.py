"""Run a click group and turn every outcome into the kit's exit codes."""

from __future__ import annotations

from collections.abc import Sequence

import click

from migration_tools.errors import EXIT_FAILED, EXIT_USAGE, KitError


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
    return result if isinstance(result, int) else 0
