"""`status`: where the database stands, and whether the next command can run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from migration_tools import plan, preflight
from migration_tools.runtime import Kit


@dataclass
class Status:
    connection: str
    server_version: str
    apps: list[plan.AppState]
    newest_backup: str
    checks: preflight.Preflight

    @property
    def pending_total(self) -> int:
        return sum(a.pending for a in self.apps)


def newest_backup(backups: Path) -> str:
    """The newest backup by its metadata's creation time, as 'file (created)'."""
    best: tuple[str, str] | None = None
    for meta in backups.glob("*.json") if backups.is_dir() else []:
        try:
            created = str(json.loads(meta.read_text()).get("created_at", ""))
        except (OSError, ValueError):
            continue
        if best is None or created > best[0]:
            best = (created, meta.with_suffix(".sql").name)
    return f"{best[1]} ({best[0]})" if best else "none"


def collect(kit: Kit) -> Status:
    checks = preflight.run(kit.params)
    ex = plan.executor(kit.alias)
    return Status(
        connection=kit.params.describe(),
        server_version=checks.server_version,
        apps=plan.per_app(ex),
        newest_backup=newest_backup(kit.paths.backups),
        checks=checks,
    )
