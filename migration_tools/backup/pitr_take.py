"""`backup` with the pgBackRest tier: a pgBackRest backup of the stanza, then a named restore point.

1. Refuse early (exit 2): a role that may not create restore points, an unreachable stanza.
2. `pgbackrest backup --type=incr` (BACKUP_TYPE; pgBackRest makes it full when none exists).
3. In one REPEATABLE READ transaction: `pg_create_restore_point(name)`, the applied migrations, the
   row counts and write counters (the snapshot is taken by that first statement, so the counts
   are what the point holds, but for commits in the microseconds the function runs).
4. Switch to a new WAL segment and wait until the one holding the point is archived: a point
   whose WAL is not in the repository cannot be restored to.
5. The metadata, last (backup.pitr_meta). Interrupted or failed before that, nothing names the
   point, and the backup pgBackRest kept is a plain pgBackRest backup (expire handles it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from migration_tools import __version__
from migration_tools.backup import metadata, pgbackrest, pitr_meta
from migration_tools.backup.pitr_meta import PitrMeta, RestorePoint
from migration_tools.core.errors import BadInput, OperationFailed, prog_name
from migration_tools.core.events import Event, Report, quiet
from migration_tools.core.pgbackrest_config import PgBackRestSettings
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size
from migration_tools.pg import catalog, db

ARCHIVE_WAIT_S = 120.0


@dataclass
class PitrResult:
    meta: PitrMeta
    path: Path
    backup: pgbackrest.BackupSet
    seconds: float


def settings_of(kit: Kit) -> PgBackRestSettings:
    found = kit.settings.pgbackrest
    if found is None:
        raise BadInput("settings-pgbackrest", "MIGRATION_KIT['BACKUP_FORMAT'] is not 'pgbackrest'",
                       "set it (docs/scale.md) to use restore points")
    return found


NEEDED_FUNCTIONS = ("pg_create_restore_point(text)", "pg_switch_wal()")  # superuser-only by default


def require_restore_point_privilege(conn: psycopg.Connection[Any], user: str) -> None:
    """Refuse before pgBackRest runs when the role may not create the point or switch the WAL."""
    missing = [f for f in NEEDED_FUNCTIONS
               if not db.scalar(conn, "SELECT has_function_privilege(%s, 'EXECUTE')", (f,))]
    if missing:
        grants = "; ".join(f"GRANT EXECUTE ON FUNCTION {f} TO {user}" for f in missing)
        raise BadInput(
            "pitr-privilege",
            f"role '{user}' may not create restore points ({', '.join(missing)}); nothing was changed",
            f"{grants}; then run {prog_name()} backup",
        )


def wait_archived(conn: psycopg.Connection[Any], wal_file: str, timeout_s: float = ARCHIVE_WAIT_S) -> None:
    """Until pg_stat_archiver says `wal_file` (or a later segment) was archived."""
    db.scalar(conn, "SELECT pg_switch_wal()")
    deadline = time.monotonic() + timeout_s
    while True:
        last = db.scalar(conn, "SELECT last_archived_wal FROM pg_stat_archiver") or ""
        if last and last[8:] >= wal_file[8:]:  # the same timeline's segments sort by name
            return
        if time.monotonic() > deadline:
            raise OperationFailed(
                "pitr-archive",
                f"the WAL segment {wal_file} holding the restore point was not archived within "
                f"{timeout_s:g}s (last archived: {last or 'none'}); no restore point was recorded",
                "check archive_command and pgbackrest check, then run the backup again",
            )
        time.sleep(0.2)


def _point(kit: Kit, conn: psycopg.Connection[Any], name: str) -> tuple[RestorePoint, dict[str, Any]]:
    conn.autocommit = False
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        lsn, wal, at = conn.execute(
            "SELECT p, pg_walfile_name(p), now()::text FROM pg_create_restore_point(%s) AS p", (name,)
        ).fetchone() or (None, None, None)
        taken = {
            "applied_migrations": catalog.applied_migrations(conn),
            "row_counts": catalog.exact_row_counts(conn),
            "databases": [r[0] for r in conn.execute(catalog.CLUSTER_DATABASES_SQL).fetchall()],
        }
    conn.autocommit = True
    taken["write_counters"] = catalog.write_counters(conn)
    return RestorePoint(name=name, lsn=str(lsn), time=str(at), wal_file=str(wal)), taken


def create(kit: Kit, reason: str, *, report: Report = quiet) -> PitrResult:
    settings = settings_of(kit)
    started = time.monotonic()
    params = kit.params
    backups = metadata.ensure_private_dir(kit.paths.backups)
    with db.connect(params, purpose="backup") as conn:
        require_restore_point_privilege(conn, params.user)
        server_version = str(db.scalar(conn, "SHOW server_version")).split()[0]
        server_num = db.server_version_num(conn)
        moment = metadata.now_utc()
        name = _free_name(backups, kit.settings.backup_prefix, moment)
        report(Event("step", f"pgbackrest backup --type={settings.backup_type} of stanza "
                             f"'{settings.stanza}' (the whole cluster) ..."))
        kit.log.info("backup pgbackrest start stanza=%s type=%s reason=%s", settings.stanza,
                     settings.backup_type, reason)
        made = pgbackrest.take(settings, settings.backup_type)
        report(Event("ok", f"pgBackRest {made.kind} backup {made.label}: {human_size(made.size)} of cluster, "
                           f"{human_size(made.repo_size)} written to the repository"))
        point, taken = _point(kit, conn, name)
        wait_archived(conn, point.wal_file)
    report(Event("ok", f"restore point '{point.name}' at LSN {point.lsn} ({point.time}), its WAL archived"))
    counts = taken["row_counts"]
    report(Event("ok", f"row counts: {len(counts)} tables, {sum(counts.values()):,} rows, at the point"))
    meta = PitrMeta(
        created_at=metadata.iso(moment), reason=reason, database=params.dbname, host=params.host,
        port=params.port, user=params.user, server_version=server_version, server_version_num=server_num,
        stanza=settings.stanza, backup_label=made.label, backup_type=made.kind, restore_point=point,
        django_alias=kit.alias, tool_version=__version__, **taken,
    )
    path = pitr_meta.write(meta, backups)
    seconds = time.monotonic() - started
    kit.log.info("backup pgbackrest done label=%s point=%s lsn=%s seconds=%.2f", made.label, point.name,
                 point.lsn, seconds)
    return PitrResult(meta, path, made, seconds)


def _free_name(backups: Path, prefix: str, moment: datetime) -> str:
    base = moment.strftime(metadata.TIMESTAMP_FORMAT)
    for n in range(1, 1000):
        name = pitr_meta.point_name(prefix, base if n == 1 else f"{base}_{n}")
        if not pitr_meta.path_for(backups, name).exists():
            return name
    raise OperationFailed("backup-name", f"no free restore point name for {base} in {backups}", "")
