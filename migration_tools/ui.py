"""How the CLI talks to the operator: marks, thousands separators, live lines on a terminal."""

from __future__ import annotations

import sys

import click

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
    """A progress line that the next live() or line() replaces, on a terminal only."""
    if is_tty():
        click.echo(f"\r\033[K{text}", nl=False)


def end_live() -> None:
    if is_tty():
        click.echo("\r\033[K", nl=False)


def verdict(ok: bool, text: str) -> None:
    click.echo(f"{'OK' if ok else 'FAILED'}: {text}")


def n(value: int) -> str:
    return f"{value:,}"


def human_size(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"  # pragma: no cover
