"""`status`: where the database stands, and whether the next command can run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from migration_tools.backups import inventory
from migration_tools.core.runtime import Kit
from migration_tools.deploy import plan, preflight, run_state
from migration_tools.pg import catalog, db, deploy_lock


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


def newest_backup(backups: Path, database: str) -> str:
    """The newest valid backup of this database, as 'file (created)'."""
    entry = inventory.newest_valid(backups, database)
    return f"{entry.dump.name} ({entry.meta.created_at})" if entry and entry.meta else "none"


def disk_check(kit: Kit, checks: preflight.Preflight) -> None:
    """Free space where the next backup goes, against the database's size."""
    from migration_tools.core.sizes import human_size

    where = kit.paths.backups if kit.paths.backups.exists() else kit.paths.root
    free = shutil.disk_usage(where).free
    with db.connect(kit.params, purpose="status") as conn:
        size = catalog.database_size(conn)
    detail = f"{human_size(free)} free in {where} for a database of {human_size(size)}"
    checks.add("backup space", "ok" if free >= size else "warn", detail)


def lock_check(kit: Kit, checks: preflight.Preflight) -> None:
    """Whether a migrate, deploy or rollback holds the deploy lock right now."""
    who = deploy_lock.current_holder(kit.params)
    if who:
        checks.add("deploy lock", "warn", f"held by {who}: a migration or rollback is running")
    else:
        checks.add("deploy lock", "ok", "free")


def collect(kit: Kit) -> Status:
    checks = preflight.run(kit.params)
    disk_check(kit, checks)
    lock_check(kit, checks)
    earlier = run_state.unfinished(kit, plan.applied_set(kit.alias))
    if earlier is not None:
        checks.add("unfinished run", "warn", earlier.describe())
    ex = plan.executor(kit.alias)
    return Status(
        connection=kit.params.describe(),
        server_version=checks.server_version,
        apps=plan.per_app(ex),
        newest_backup=newest_backup(kit.paths.backups, kit.params.dbname),
        checks=checks,
    )
