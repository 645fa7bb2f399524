"""The monitor's files: performance.log, report_<ts>.json and, beside it, report_<ts>.html.

Every file is owner-only (0600) in an owner-only directory; the JSON and HTML of one run share
their stamp. The header names the database, never its password.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from migration_tools import __version__
from migration_tools.core import audit
from migration_tools.core.djangoenv import ConnParams


def prepare_dir(out_dir: Path, log_path: Path) -> None:
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)
    audit.open_owner_only(log_path)


def append_line(log_path: Path, line: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_json(out_dir: Path, report: dict[str, Any], finished_at: datetime) -> Path:
    """`report_<UTC stamp>[_n].json`, never overwriting; the HTML takes the same name."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = finished_at.strftime("%Y%m%d_%H%M%S")
    data = (json.dumps(report, indent=2) + "\n").encode("utf-8")
    for attempt in range(100):
        suffix = f"_{attempt}" if attempt else ""
        path = out_dir / f"report_{stamp}{suffix}.json"
        if path.with_suffix(".html").exists():
            continue
        try:
            _write_new(path, data)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"report_{stamp}*.json: too many reports in the same second")


def write_html(json_path: Path, report: dict[str, Any]) -> Path:
    """The report's page beside its JSON (replacing an older rendering of the same report)."""
    html = json_path.with_suffix(".html")
    partial = html.with_name(f".{html.name}.partial")
    partial.unlink(missing_ok=True)
    _write_new(partial, _render_gently(report).encode("utf-8"))
    os.replace(partial, html)
    return html


def _render_gently(report: dict[str, Any]) -> str:
    """The page, drawn on a thread of lower CPU priority: drawing the chart takes about a second of
    CPU that the application may need (on Linux a thread's nice value is its own, so the rest of the
    run keeps its priority; elsewhere it is drawn at normal priority)."""
    from migration_tools.report.page import render

    if sys.platform != "linux":
        return render(report)
    drawn: list[str] = []
    failed: list[BaseException] = []

    def draw() -> None:
        try:
            os.nice(10)
            drawn.append(render(report))
        except BaseException as exc:  # handed to the caller's thread, raised there
            failed.append(exc)

    thread = threading.Thread(target=draw, name="report-page", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return drawn[0]


def header(params: ConnParams | None, command: str, server_version: str | None) -> dict[str, Any]:
    """Who ran what against which database, with which versions (no password, ever)."""
    try:
        import django

        django_version: str | None = django.get_version()
    except ImportError:
        django_version = None
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return {
        "command": command,
        "database": None if params is None else params.dbname,
        "host": None if params is None else params.host,
        "port": None if params is None else params.port,
        "db_user": None if params is None else params.user,
        "os_user": who,
        "kit_version": __version__,
        "django_version": django_version,
        "postgresql_version": server_version,
    }
