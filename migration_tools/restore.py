"""Roll a database back to a backup, all or nothing, keeping the state it replaces.

Plan first, act second: `plan()` resolves and validates the backup and decides how to
restore (read-only); `rollback_to()` acts on a plan. Two ways, chosen by what the role may do:

- swap (the role may create databases and owns the target, or is a superuser): restore into
  a new database `<db>__restore_<TS>`, verify it against the metadata and ANALYZE it, then
  block logins to the target, end its sessions and swap the names; the old database is kept
  as `<db>__pre_rollback_<TS>`. Any failure before the swap drops the new database and leaves
  the target untouched; a failing swap puts the names back.
- in place (no CREATEDB): a pre-rollback safety backup, then one transaction that drops
  what the role owns and restores the archive, checking the row counts and migrations
  before it commits (see restore_inplace).

Nothing here prompts; the CLI asks for confirmation. The core reports steps through `progress`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from migration_tools import db_swap, deploy_lock, restore_inplace, restore_swap
from migration_tools.backup_meta import BackupMeta, now_utc
from migration_tools.errors import BadInput, KitError, prog_name
from migration_tools.runtime import Kit

Progress = Callable[[str], None]
STAMP_FORMAT = "%Y%m%d_%H%M%S"
LIST_HINT = "run python rollback_manager.py list-backups to see the valid backups"


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
        return db_swap.side_name(self.database, "restore", self.stamp)

    @property
    def aside_db(self) -> str:
        return db_swap.side_name(self.database, "pre_rollback", self.stamp)

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


@dataclass(frozen=True)
class RollbackResult:
    dump: Path
    database: str
    method: str
    reason: str
    kept: str  # the renamed old database, or the safety backup's file name
    undo: str  # the exact command that brings the replaced state back
    tables: int
    rows: int
    migrations: int
    sessions_ended: int
    seconds: float


def stamp() -> str:
    return now_utc().strftime(STAMP_FORMAT)


def resolve_backup(backups_dir: Path, filename: str, cwd: Path | None = None) -> Path:
    """The dump FILENAME names: a file directly inside the backup directory, else BadInput."""
    raw = Path(filename)
    if ".." in raw.parts:
        raise BadInput(
            "backup-path",
            f"'{filename}' contains '..'; give a backup's file name from {backups_dir}",
            LIST_HINT,
        )
    base = backups_dir.resolve()
    if raw.is_absolute():
        candidate = raw
    elif len(raw.parts) == 1:
        candidate = base / raw
    else:
        candidate = (cwd or Path.cwd()) / raw
    resolved = candidate.resolve()
    if resolved.parent != base:
        raise BadInput(
            "backup-path",
            f"'{filename}' is not inside the backup directory {base}",
            LIST_HINT,
        )
    if not resolved.is_file():
        raise BadInput("backup-missing", f"backup '{resolved.name}' not found in {base}", LIST_HINT)
    if resolved.suffix != ".sql":
        raise BadInput(
            "backup-name",
            f"'{resolved.name}' is not a backup dump (expected <prefix>_backup_<timestamp>.sql)",
            LIST_HINT,
        )
    return resolved


@dataclass(frozen=True)
class BackupProblem:
    error_id: str
    reason: str


def backup_problem(kit: Kit, dump: Path) -> tuple[BackupMeta | None, BackupProblem | None]:
    """Full validation (checksum and every data block) and the right database."""
    from migration_tools import backup_validate

    try:
        result = backup_validate.validate(dump, full=True)
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
    with db_swap.maintenance(kit.params, "rollback plan") as conn:
        if not db_swap.exists(conn, kit.params.dbname):
            raise BadInput(
                "db-missing",
                f"database '{kit.params.dbname}' not found on {kit.params.host}:{kit.params.port}",
                f"fix DB_NAME, then run {prog_name()} status",
            )
        caps = db_swap.role_caps(conn, kit.params.dbname)
    return RollbackPlan(
        dump=dump,
        meta=meta,
        database=kit.params.dbname,
        method="swap" if caps.can_swap else "in-place",
        keep_owner=caps.superuser,
        stamp=stamp(),
    )


@contextlib.contextmanager
def _maybe_lock(kit: Kit, take: bool) -> Iterator[None]:
    if not take:
        yield
        return
    with deploy_lock.hold(kit.params, "rollback"):
        yield


def rollback_to(
    kit: Kit,
    dump_path: Path,
    *,
    reason: str,
    take_lock: bool = True,
    progress: Progress | None = None,
    prepared: RollbackPlan | None = None,
) -> RollbackResult:
    """Replace the target database with the backup at dump_path; see the module docstring.

    Raises BadInput (nothing changed: invalid backup, wrong database), OperationFailed (the
    target was not touched) or RolledBack (the target was touched and put back).
    """
    say = progress or (lambda _text: None)
    started = time.monotonic()
    with _maybe_lock(kit, take_lock):
        the_plan = prepared or plan(kit, Path(dump_path))
        kit.log.info(
            "rollback start file=%s database=%s method=%s reason=%s",
            the_plan.dump.name, the_plan.database, the_plan.method, reason,
        )
        try:
            if the_plan.method == "swap":
                outcome = restore_swap.run(kit, the_plan, say)
            else:
                outcome = restore_inplace.run(kit, the_plan, say)
        except KitError as exc:
            kit.log.error(
                "rollback failed file=%s database=%s: %s [%s]",
                the_plan.dump.name, the_plan.database, exc.message, exc.error_id,
            )
            raise
    snap = outcome.snapshot
    result = RollbackResult(
        dump=the_plan.dump,
        database=the_plan.database,
        method=the_plan.method,
        reason=reason,
        kept=outcome.kept,
        undo=outcome.undo,
        tables=len(snap.row_counts),
        rows=snap.rows,
        migrations=len(snap.applied),
        sessions_ended=outcome.sessions_ended,
        seconds=time.monotonic() - started,
    )
    kit.log.info(
        "rollback done file=%s database=%s method=%s kept=%s rows=%d migrations=%d seconds=%.1f",
        result.dump.name, result.database, result.method, result.kept, result.rows,
        result.migrations, result.seconds,
    )
    return result
