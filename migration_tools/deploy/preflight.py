"""Checks that run before any command touches the database."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Literal

from migration_tools.core.config import require_env
from migration_tools.core.djangoenv import ConnParams, django_version
from migration_tools.core.errors import BadInput, status_command
from migration_tools.pg import db, tools
from migration_tools.pg.versions import django_minimum, server_support

Level = Literal["ok", "warn", "fail"]


@dataclass
class Check:
    name: str
    level: Level
    detail: str


@dataclass
class Preflight:
    checks: list[Check] = field(default_factory=list)
    server_version: str = ""
    server_version_num: int = 0

    def add(self, name: str, level: Level, detail: str) -> None:
        self.checks.append(Check(name, level, detail))

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.level == "fail"]

    @property
    def server_warning(self) -> str:
        """The server version's warning (an untested major, 14.0 to 14.3), or ''."""
        return next((c.detail for c in self.checks if c.name == "server version" and c.level == "warn"), "")


def in_virtualenv() -> bool:
    return sys.prefix != sys.base_prefix


def run(params: ConnParams, *, need_tools: bool = True) -> Preflight:
    """Run every check; raises KitError for the ones that make going on pointless."""
    report = Preflight()
    require_env()  # the same rule as the shell scripts: missing or malformed is exit 2
    report.add("environment", "ok", "DJANGO_SETTINGS_MODULE and DB_* set")
    report.add("django", "ok", f"Django {django_version()}")
    if in_virtualenv():
        report.add("virtualenv", "ok", sys.prefix)
    else:
        report.add("virtualenv", "warn", f"none detected (python {sys.executable})")
    started = time.monotonic()
    with db.connect(params, purpose="preflight") as conn:
        report.server_version = str(db.scalar(conn, "SHOW server_version")).split()[0]
        report.server_version_num = db.server_version_num(conn)
    elapsed_ms = (time.monotonic() - started) * 1000
    report.add("database", "ok", f"{params.describe()} answered in {elapsed_ms:.0f} ms")
    level, detail = server_support(report.server_version_num, django_version(), django_minimum())
    if level == "fail":
        raise BadInput("server-version", detail,
                       "upgrade the server or use a Django release that supports it "
                       "(README: Supported versions)")
    report.add("server version", level, detail)
    if need_tools:
        problems = tools.check_tools_against_server(report.server_version_num)
        if problems:
            raise BadInput("tools", problems[0], f"then run {status_command()}")
        versions = ", ".join(
            f"{name} {tools.tool_major_version(name)[1]}" for name in tools.CLIENT_TOOLS
        )
        report.add("client tools", "ok", versions)
    return report
