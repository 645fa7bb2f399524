"""Start and stop the throwaway PostgreSQL of the demo and the tests; create and drop its databases.

    python -m devtools.throwaway_pg start DIR    # prints shell exports for DB_*
    python -m devtools.throwaway_pg stop DIR
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from devtools.pg_server import HarnessError, Server, create_database, drop_database


@click.group()
def cli() -> None:
    """Start and stop the throwaway PostgreSQL used by the demo and the tests."""


@cli.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--fast", is_flag=True, help="fsync off: for tests only.")
def start(root: Path, fast: bool) -> None:
    """Start (initialising if needed); print shell exports of DB_HOST, DB_PORT, DB_USER."""
    server = Server(root.resolve(), fast=fast)
    try:
        server.start()
    except HarnessError as exc:
        click.echo(f"throwaway_pg: {exc}", err=True)
        sys.exit(1)
    for key, value in server.env().items():
        if key not in ("DB_PASSWORD", "DB_NAME"):
            click.echo(f"export {key}={shlex.quote(value)}")


@cli.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--destroy", is_flag=True, help="Also delete the data directory.")
def stop(root: Path, destroy: bool) -> None:
    """Stop the server (and with --destroy remove its files)."""
    server = Server(root.resolve())
    if destroy:
        server.destroy()
    else:
        server.stop()



@cli.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--template", default=None, help="Copy this database.")
def createdb(root: Path, name: str, template: str | None) -> None:
    """Create database NAME on the running server unless it exists."""
    created = create_database(Server(root.resolve()), name, template)
    click.echo(f"database {name} {'created' if created else 'exists'}", err=True)


@cli.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("name")
def dropdb(root: Path, name: str) -> None:
    """Drop database NAME (terminating its sessions) if it exists."""
    drop_database(Server(root.resolve()), name)


if __name__ == "__main__":
    cli()
