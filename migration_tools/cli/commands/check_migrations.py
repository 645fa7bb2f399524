"""`check-migrations`: the pending plan per app; fails on missing migrations or conflicts."""

from __future__ import annotations

import click

from migration_tools.cli import output
from migration_tools.cli.options import database_option
from migration_tools.core import runtime


@click.command("check-migrations")
@database_option
def command(alias: str) -> None:
    """List pending migrations in plan order; fail on missing migrations or conflicts."""
    from migration_tools.deploy import checks, plan, preflight

    kit = runtime.start("check-migrations", alias)
    preflight.run(kit.params, need_tools=False)
    result = checks.run(plan.prepare(alias))
    if result.pending:
        output.line(f"Pending migrations ({len(result.pending)}), in plan order:")
        for index, (app, name) in enumerate(result.pending, 1):
            output.line(f"  {index}. {app}.{name}")
        per_app: dict[str, int] = {}
        for app, _name in result.pending:
            per_app[app] = per_app.get(app, 0) + 1
        output.line("Per app: " + ", ".join(f"{app} {count}" for app, count in sorted(per_app.items())))
    if result.missing:
        for app, ops in sorted(result.missing.items()):
            output.mark("fail", f"{app}: model changes without a migration: {'; '.join(ops)}")
        raise checks.missing_error(result.missing)
    kit.log.info("pending=%d", len(result.pending))
    if result.pending:
        output.verdict(True, f"{len(result.pending)} migration(s) pending, no conflicts")
    else:
        output.verdict(True, "no pending migrations: the database is up to date")
