"""Plan a rollback without changing anything: resolve and validate the backup, choose how to restore.

Two ways, chosen by what the role may do (see restore.swap and restore.inplace). The plan is a
value: printed for --dry-run and before confirmation, then handed to restore.run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migration_tools.backups.metadata import BackupMeta, now_utc
from migration_tools.core.errors import BadInput, prog_name
from migration_tools.core.runtime import Kit
from migration_tools.pg import databases


@dataclass(frozen=True)
class RollbackPlan:
    dump: Path
    meta: BackupMeta
    database: str
    method: str  # "swap" or "in-place"
    keep_owner: bool
    stamp: str

    @property
    def new_db(self) -> str:
        return databases.side_name(self.database, "restore", self.stamp)

    @property
    def aside_db(self) -> str:
        return databases.side_name(self.database, "pre_rollback", self.stamp)

    def describe(self) -> list[str]:
        """What the rollback would do, as lines an operator reads before confirming."""
        m = self.meta
        head = [
            f"Backup: {self.dump.name} (created {m.created_at}, reason {m.reason})",
            f"  {len(m.applied_migrations)} applied migrations, {len(m.row_counts)} tables, "
            f"{sum(m.row_counts.values()):,} rows",
        ]
        if self.method == "swap":
            return [
                *head,
                f"Would restore it into a new database '{self.new_db}', verify it, then swap names:",
                f"  '{self.database}' -> '{self.aside_db}' (kept), '{self.new_db}' -> '{self.database}'",
                f"  sessions connected to '{self.database}' are ended at the swap",
            ]
        return [
            *head,
            "Would take a pre-rollback safety backup, then restore in place in one transaction",
            f"  (everything in '{self.database}' the role owns is replaced by the backup's contents)",
        ]


def stamp() -> str:
    """The side databases' stamp: unique even for two rollbacks in one second (databases.new_stamp)."""
    return databases.new_stamp(now_utc())




@dataclass(frozen=True)
class BackupProblem:
    error_id: str
    reason: str


def backup_problem(kit: Kit, dump: Path) -> tuple[BackupMeta | None, BackupProblem | None]:
    """Full validation (checksum and every data block) and the right database."""
    from migration_tools.backups import validate

    try:
        result = validate.validate(dump, full=True)
    except BadInput as exc:
        return None, BackupProblem("backup-invalid", exc.message)
    if not result.ok or result.meta is None:
        return None, BackupProblem("backup-invalid", result.reason or "invalid")
    meta = result.meta
    if meta.database != kit.params.dbname:
        return meta, BackupProblem(
            "backup-other-database",
            f"it is a backup of database '{meta.database}', not '{kit.params.dbname}'",
        )
    return meta, None


def check_backup(kit: Kit, dump: Path) -> BackupMeta:
    """The backup's metadata when it may be restored here, else BadInput (nothing changed)."""
    meta, problem = backup_problem(kit, dump)
    if problem is None and meta is not None:
        return meta
    assert problem is not None
    if problem.error_id == "backup-other-database":
        raise BadInput(
            problem.error_id,
            f"refusing {dump.name}: {problem.reason}; nothing was changed",
            "pick a backup of this database (python rollback_manager.py list-backups) or fix DB_NAME",
        )
    raise BadInput(
        problem.error_id,
        f"backup {dump.name} failed validation: {problem.reason}; nothing was changed",
        "pick another backup (python rollback_manager.py list-backups) or run emergency-rollback",
    )


def plan(kit: Kit, dump: Path, meta: BackupMeta | None = None) -> RollbackPlan:
    """Validate the backup (unless its checked metadata is given) and decide how to restore it.

    Changes nothing.
    """
    meta = meta or check_backup(kit, dump)
    with databases.maintenance(kit.params, "rollback plan") as conn:
        if not databases.exists(conn, kit.params.dbname):
            raise BadInput(
                "db-missing",
                f"database '{kit.params.dbname}' not found on {kit.params.host}:{kit.params.port}",
                f"fix DB_NAME, then run {prog_name()} status",
            )
        caps = databases.role_caps(conn, kit.params.dbname)
    return RollbackPlan(
        dump=dump,
        meta=meta,
        database=kit.params.dbname,
        method="swap" if caps.can_swap else "in-place",
        keep_owner=caps.superuser,
        stamp=stamp(),
    )
