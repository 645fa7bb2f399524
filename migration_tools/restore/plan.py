"""Plan a rollback without changing anything: resolve and validate the backup, choose how to restore.

Two ways, chosen by what the role may do (see restore.swap and restore.inplace) or by --in-place.
The plan is a value: printed for --dry-run and before confirmation, then handed to restore.run.
What it finds out first (the writes the rollback discards, whether a swap could finish) is in
restore.checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migration_tools.backup.metadata import BackupMeta, now_utc
from migration_tools.core.errors import BadInput, status_command
from migration_tools.core.runtime import Kit
from migration_tools.pg import databases, sessions
from migration_tools.restore import checks

DEFAULT_LOCK_TIMEOUT_S = 2.0
LOCK_TRIES = 5  # in place: how many times the restore tries to take its locks


@dataclass(frozen=True)
class RollbackPlan:
    dump: Path
    meta: BackupMeta
    database: str
    method: str  # "swap" or "in-place"
    keep_owner: bool
    stamp: str
    why_in_place: str = ""  # why the rollback restores in place, for the plan's text
    writes: str = ""  # the rows written since the backup (restore.checks.writes_since_backup)
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S  # in place: the longest lock wait of one try

    @property
    def new_db(self) -> str:
        return databases.side_name(self.database, "restore", self.stamp)

    @property
    def aside_db(self) -> str:
        return databases.side_name(self.database, "pre_rollback", self.stamp)

    def describe(self, *, dry_run: bool = False) -> list[str]:
        """What the rollback will do (or, for a dry run, would do), as lines an operator reads
        before confirming."""
        m = self.meta
        will, would = ("Would", "would") if dry_run else ("Will", "will")
        lines = [
            f"Backup: {self.dump.name} (created {m.created_at}, reason {m.reason})",
            f"  {len(m.applied_migrations)} applied migrations, {len(m.row_counts)} tables, "
            f"{sum(m.row_counts.values()):,} rows",
        ]
        if self.writes:
            lines.append(checks.WRITES_PREFIX + self.writes)
        if self.method == "swap":
            return [
                *lines,
                f"{will} restore it into a new database '{self.new_db}', verify it, then swap names:",
                f"  '{self.database}' -> '{self.aside_db}' (kept), '{self.new_db}' -> '{self.database}'",
                f"  sessions connected to '{self.database}' {would} be ended at the swap",
            ]
        why = f"{self.why_in_place}; " if self.why_in_place else ""
        return [
            *lines,
            f"{will} take a pre-rollback safety backup, then restore in place in one transaction",
            f"  ({why}everything in '{self.database}' the role owns, large objects included, is replaced "
            "by the backup's contents)",
            f"  the application waits at most {self.lock_timeout_s:g}s per try for the tables it locks "
            f"({LOCK_TRIES} tries at most)",
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
    from migration_tools.backup import validate

    try:
        result = validate.validate(dump, full=True, jobs=kit.settings.backup_jobs)
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


def plan(
    kit: Kit,
    dump: Path,
    meta: BackupMeta | None = None,
    *,
    in_place: bool = False,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> RollbackPlan:
    """Validate the backup (unless its checked metadata is given) and decide how to restore it.

    Swap when the role may (unless `in_place`), after checking that the swap could finish: a
    property it could not copy, or sessions it may not end, are refused here (OperationFailed,
    naming what would let it, --in-place among them). Changes nothing.
    """
    meta = meta or check_backup(kit, dump)
    target = kit.params.dbname
    with databases.maintenance(kit.params, "rollback plan") as conn:
        if not databases.exists(conn, target):
            raise BadInput(
                "db-missing",
                f"database '{target}' not found on {kit.params.host}:{kit.params.port}",
                f"fix DB_NAME, then run {status_command()}",
            )
        caps = databases.role_caps(conn, target)
        me = sessions.role(conn)
        accepting = databases.database_info(conn, target).allow_connections
        swap = caps.can_swap and not in_place
        if swap and not caps.superuser:  # a superuser may copy every property and end every session
            checks.refuse_swap_problems(conn, target)
    if swap:
        why = ""
    elif in_place:
        why = "--in-place was given"
    elif not caps.createdb:
        why = f"role '{me}' may not create databases"
    else:
        why = f"role '{me}' does not own database '{target}'"
    return RollbackPlan(
        dump=dump,
        meta=meta,
        database=target,
        method="swap" if swap else "in-place",
        keep_owner=caps.superuser,
        stamp=stamp(),
        why_in_place=why,
        writes=checks.writes_since_backup(kit.params, dump, meta, accepting=accepting),
        lock_timeout_s=lock_timeout_s,
    )
