"""Options that several commands share, declared once."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

database_option = click.option(
    "--database",
    "alias",
    default="default",
    show_default=True,
    metavar="ALIAS",
    help="Django database alias to work on.",
)

yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")

rollback_dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Validate the backup and say what would be done; change nothing."
)

commit_each_option = click.option(
    "--commit-each", is_flag=True,
    help="Commit each migration on its own, as manage.py migrate does, instead of the whole plan in one "
    "transaction (which holds every lock the plan takes until the end, and which a failure undoes exactly).",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")


class Seconds(click.FloatRange):
    """A number of seconds of at least `min`: nan and inf are refused as click's usage errors."""

    name = "number of seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


def monitor_options(func: F) -> F:
    """--monitor/--no-monitor and --interval, for the commands that migrate."""
    func = click.option(
        "--interval", type=Seconds(min=0.05), default=5.0, show_default=True,
        metavar="SECONDS", help="Seconds between monitoring samples.",
    )(func)
    return click.option(
        "--monitor/--no-monitor", default=False,
        help="Sample CPU, memory, disk and the database while migrating; show it live.",
    )(func)


def pitr_side_options(func: F) -> F:
    """--side-datadir and --side-port: the pgBackRest tier's restore beside the running cluster."""
    func = click.option(
        "--side-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
        help="pgBackRest tier: the port the side copy listens on.",
    )(func)
    return click.option(
        "--side-datadir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
        help="pgBackRest tier: restore the point into this new data directory and start it there, "
        "leaving the running cluster alone (switch the application over yourself).",
    )(func)
