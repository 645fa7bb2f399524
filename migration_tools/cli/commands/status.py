"""`status`: where the database stands, and whether the next command can run."""

from __future__ import annotations

import click

from migration_tools.cli import output
from migration_tools.cli.options import database_option
from migration_tools.core import runtime


@click.command("status")
@database_option
def command(alias: str) -> None:
    """Show the connection, server, migration counts, newest backup and pre-flight results."""
    from migration_tools.deploy import status

    kit = runtime.start("status", alias)
    st = status.collect(kit)
    output.line(f"Connection: {st.connection}")
    output.line(f"Server: PostgreSQL {st.server_version}")
    output.line("Migrations (applied / pending):")
    for app in st.apps:
        output.line(f"  {app.app}: {app.applied} applied, {app.pending} pending")
    output.line(f"Newest backup: {st.newest_backup}")
    output.line("Pre-flight:")
    for check in st.checks.checks:
        output.mark(check.level, f"{check.name}: {check.detail}")
    kit.log.info("status pending=%d", st.pending_total)
    output.verdict(True, f"{st.pending_total} migration(s) pending on {st.connection}")
