"""How the CLI talks to the operator: marks, thousands separators, live lines on a terminal."""

from __future__ import annotations

import sys

import click

from migration_tools.core import timeline
from migration_tools.core.events import Event
from migration_tools.core.sizes import human_size

__all__ = ["human_size"]

OK, WARN, FAIL = "✓", "!", "✗"


def is_tty() -> bool:
    return sys.stdout.isatty()


def line(text: str = "") -> None:
    click.echo(text)


def mark(level: str, text: str) -> None:
    click.echo(f"{ {'ok': OK, 'warn': WARN, 'fail': FAIL}[level] } {text}")


def warn(text: str) -> None:
    click.echo(f"warning: {text}", err=True)


def live(text: str) -> None:
    """A progress line that the next live() or line() replaces, on a terminal only; while a
    progress watch runs (cli/progress.py) it becomes the watch's current step instead."""
    from migration_tools.cli import progress

    watch = progress.active()
    if watch is not None:
        watch.set_step(text)
    elif is_tty():
        click.echo(f"\r\033[K{text}", nl=False)


def end_live() -> None:
    from migration_tools.cli import progress

    watch = progress.active()
    if watch is not None:
        watch.set_step(None)
    elif is_tty():
        click.echo("\r\033[K", nl=False)


def verdict(ok: bool, text: str) -> None:
    click.echo(f"{'OK' if ok else 'FAILED'}: {text}")


def n(value: int) -> str:
    return f"{value:,}"


def show(event: Event) -> None:
    """The one place where the core's events become what the operator sees (and the report's timeline)."""
    timeline.event(event)
    if event.kind == "migration":
        where = f"[{event.index}/{event.total}] {event.label}"
        if event.phase == "start":
            live(f"{where} ..." if not event.backwards else f"  unapplying {where} ...")
            return
        end_live()
        line(f"  unapplied {where} in {event.seconds:.2f}s" if event.backwards
             else f"{where} applied in {event.seconds:.2f}s")
    elif event.kind == "live":
        live(event.text)
    elif event.kind == "ok":
        mark("ok", event.text)
    elif event.kind == "warn":
        warn(event.text)
    else:
        line(event.text)
