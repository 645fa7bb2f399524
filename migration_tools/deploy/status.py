"""`status`: where the database stands, and whether the next command can run."""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from migration_tools.backup import inventory, pitr_meta
from migration_tools.backup import side_databases as sides
from migration_tools.core.errors import KitError, OperationFailed
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size
from migration_tools.deploy import plan, preflight, run_state
from migration_tools.pg import catalog, db, deploy_lock

CLEANUP = "python rollback_manager.py cleanup-backups"


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


def newest_backup(backups: Path, database: str, fmt: str = "custom") -> str:
    """The newest valid backup of this database, as 'file (created)'; for the pgBackRest tier the
    newest restore point the kit recorded (list-backups says whether its backup is still kept)."""
    if fmt == "pgbackrest":
        point = next((m for _, m, _ in pitr_meta.all_points(backups, database) if m), None)
        return f"restore point {point.restore_point.name} ({point.created_at})" if point else "none"
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


def lock_check(kit: Kit, checks: preflight.Preflight) -> str:
    """Whether a migrate, deploy or rollback holds the deploy lock right now; returns who."""
    who = deploy_lock.current_holder(kit.params)
    if who:
        checks.add("deploy lock", "warn", f"held by {who}: a migration or rollback is running")
    else:
        checks.add("deploy lock", "ok", "free")
    return who


def _psql(kit: Kit, found: sides.Survey, *statements: str) -> str:
    p = kit.params
    argv = ["psql", "-h", p.host, "-p", str(p.port), "-U", p.user, "-d", found.maintenance_db]
    for statement in statements:
        argv += ["-c", statement]
    return " ".join(shlex.quote(a) for a in argv)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def usable_target(kit: Kit, found: sides.Survey) -> None:
    """Refuse, naming the repair, a target that an interrupted rollback left unusable.

    A swap blocks logins to the target, then renames it aside and the restored copy in its place:
    killed between those steps it leaves the target refusing every connection, or gone with its
    old self kept under `__pre_rollback_`. Nothing else in status can run on such a target.
    """
    target = found.target
    if found.target_exists and not found.allows_connections:
        reopen = _psql(kit, found, f"ALTER DATABASE {_quoted(target)} ALLOW_CONNECTIONS true")
        raise OperationFailed(
            "db-refusing",
            f"database '{target}' refuses every connection (datallowconn is false): a rollback's swap "
            "was interrupted before it could let them in again",
            "the next rollback repairs it first (python rollback_manager.py rollback FILENAME, or "
            f"emergency-rollback); to let connections in now without a rollback: {reopen}",
        )
    aside = found.newest_aside
    if not found.target_exists and aside is not None:
        repair = [f"ALTER DATABASE {_quoted(aside.name)} RENAME TO {_quoted(target)}"]
        if not aside.allows_connections:
            repair.append(f"ALTER DATABASE {_quoted(target)} ALLOW_CONNECTIONS true")
        raise OperationFailed(
            "db-swap-interrupted",
            f"database '{target}' does not exist, but '{aside.name}' (what it was before the newest "
            "rollback) does: a rollback's swap was interrupted between its two renames",
            f"rename it back: {_psql(kit, found, *repair)}; then run status again",
        )


def side_checks(checks: preflight.Preflight, found: sides.Survey | None, problem: str, holder: str) -> None:
    """Kept databases (ok), and leftovers of interrupted rollbacks and deep checks (warnings)."""
    if found is None:
        checks.add("side databases", "warn", f"not looked at: {problem}")
        return
    now = datetime.now(timezone.utc)
    if found.kept:
        total = sum(d.size or 0 for d in found.kept)
        newest = found.kept[0]
        checks.add(
            "kept databases",
            "ok",
            f"{len(found.kept)} kept by rollbacks, {human_size(total)} in all, newest '{newest.name}' "
            f"({sides.when(newest.created)}); {CLEANUP} --keep N keeps the newest N",
        )
    for copy in found.restore_copies:
        if holder:
            checks.add("restore copy", "ok", f"'{copy.name}': in use by {holder} (it holds the deploy lock)")
        else:
            checks.add(
                "leftover restore copy",
                "warn",
                f"'{copy.name}' ({sides.describe(copy, now)}); {CLEANUP} drops it, so does the next rollback",
            )
    for scratch in found.scratch:
        if scratch.sessions:
            detail = f"in use by a running deep check ({scratch.sessions} session(s))"
            checks.add("deep-check scratch database", "ok", f"'{scratch.name}': {detail}")
        else:
            age = scratch.age(now)
            young = age is not None and age < sides.SCRATCH_MIN_AGE
            minutes = sides.SCRATCH_MIN_AGE.total_seconds() / 60
            later = f" once it is {minutes:.0f} minutes old" if young else ""
            checks.add(
                "leftover scratch database",
                "warn",
                f"'{scratch.name}' ({sides.describe(scratch, now)}); {CLEANUP} drops it{later}",
            )


def collect(kit: Kit) -> Status:
    found: sides.Survey | None = None
    problem = ""
    try:
        found = sides.inspect(kit.params, "status")
    except KitError as exc:
        problem = exc.message  # the server down: preflight says so below
    if found is not None:
        try:
            usable_target(kit, found)
        except KitError as exc:
            kit.log.error("status: %s [%s]", exc.message, exc.error_id)
            raise
    checks = preflight.run(kit.params)
    disk_check(kit, checks)
    holder = lock_check(kit, checks)
    side_checks(checks, found, problem, holder)
    earlier = run_state.unfinished(kit, plan.applied_set(kit.alias))
    if earlier is not None:
        checks.add("unfinished run", "warn", earlier.describe())
    ex = plan.executor(kit.alias)
    return Status(
        connection=kit.params.describe(),
        server_version=checks.server_version,
        apps=plan.per_app(ex),
        newest_backup=newest_backup(kit.paths.backups, kit.params.dbname, kit.settings.backup_format),
        checks=checks,
    )
