"""`--all-databases`: one command over every PostgreSQL alias of DATABASES, one after another.

Each alias runs as its own `python -m migration_tools COMMAND ... --database ALIAS` (its own
pre-flight, deploy lock, backup, log lines and exit code, exactly as if the operator had typed
it), `default` first, then the others in the settings' order. A command that changes databases
(backup, migrate, full-deploy) stops at the first alias that fails, leaving the later ones
untouched; check-migrations and verify-data go on and report every alias. One summary ends it.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from migration_tools.cli import output
from migration_tools.core.errors import EXIT_FAILED, OperationFailed, prog_name

F = TypeVar("F", bound=Callable[..., Any])
READ_ONLY = frozenset({"check-migrations", "verify-data"})
SKIPPED = ("alias", "all_databases")


def aliases() -> list[str]:
    """The PostgreSQL aliases of DATABASES, default first (read without loading the apps)."""
    from migration_tools.core.djangoenv import setup_django

    setup_django(populate_apps=False)
    from django.conf import settings

    found = [alias for alias, conf in settings.DATABASES.items() if "postgres" in str(conf.get("ENGINE", ""))]
    return sorted(found, key=lambda alias: alias != "default")


def _argv(ctx: click.Context) -> list[str]:
    """The options the operator gave, as a command line, without --database/--all-databases."""
    args: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in SKIPPED or param.name is None:
            continue
        value = ctx.params.get(param.name)
        if param.is_flag:
            if param.secondary_opts:
                args.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                args.append(param.opts[0])
        elif param.multiple:
            for item in value or ():
                args += [param.opts[0], str(item)]
        elif value is not None and value != param.default:
            args += [param.opts[0], str(value)]
    return args


def run_each(command: str, ctx: click.Context) -> None:
    names = aliases()
    results: list[tuple[str, int | None]] = []
    for alias in names:
        output.line(f"==> {command} --database {alias}")
        argv = [sys.executable, "-m", "migration_tools", command, *_argv(ctx), "--database", alias]
        code = subprocess.call(argv, env=os.environ | {"PM_PROG": prog_name()})
        results.append((alias, code))
        if code != 0 and command not in READ_ONLY:
            break
    done = dict(results)
    words = {0: "ok", 2: "refused (exit 2)", 3: "failed and rolled back (exit 3)"}
    summary = ", ".join(f"{alias} {words.get(done[alias], f'FAILED (exit {done[alias]})')}" if alias in done
                        else f"{alias} not run" for alias in names)
    output.line(f"All databases ({len(names)}): {summary}")
    failed = [(alias, code) for alias, code in results if code]
    if failed:
        alias, code = failed[0]
        error = OperationFailed(
            "all-databases", f"{command} failed on database '{alias}' ({len(failed)} of {len(names)} failed)",
            f"see its lines above; run {prog_name()} {command} --database {alias} once it is fixed")
        error.exit_code = code if code in (1, 2, 3) else EXIT_FAILED
        raise error
    output.verdict(True, f"{command} succeeded on all {len(names)} database(s)")


def all_databases_option(command: str) -> Callable[[F], F]:
    """Adds --all-databases to a command; with it, the command runs once per alias instead."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, all_databases: bool, **kwargs: Any) -> Any:
            if all_databases:
                if kwargs.get("alias", "default") != "default":
                    raise click.UsageError("--all-databases and --database cannot be used together")
                return run_each(command, click.get_current_context())
            return func(*args, **kwargs)

        return click.option(  # type: ignore[return-value]
            "--all-databases", is_flag=True,
            help="Run on every PostgreSQL alias of DATABASES, default first, one after another; one summary.",
        )(wrapper)

    return decorate
