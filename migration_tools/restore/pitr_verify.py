"""After a point-in-time restore: this database's applied migrations and row counts against the
restore point's metadata (read in the transaction that created the point)."""

from __future__ import annotations

from migration_tools.backup.pitr_meta import PitrMeta
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import OperationFailed
from migration_tools.core.events import Event, Report
from migration_tools.pg import catalog, db

SHOWN = 5


def differences(meta: PitrMeta, migrations: list[tuple[str, str]], counts: dict[str, int]) -> list[str]:
    found: list[str] = []
    if sorted(map(tuple, migrations)) != sorted(map(tuple, meta.applied_migrations)):
        found.append(f"applied migrations: {len(migrations)} now, {meta.migration_count} at the point")
    for table in sorted(set(counts) | set(meta.row_counts)):
        now, then = counts.get(table), meta.row_counts.get(table)
        if now != then:
            found.append(f"{table}: {'missing' if now is None else f'{now:,}'} rows now, "
                         f"{'absent' if then is None else f'{then:,}'} at the point")
    return found


def check(params: ConnParams, meta: PitrMeta, report: Report) -> None:
    with db.connect(params, purpose="rollback") as conn:
        migrations = catalog.applied_migrations(conn)
        counts = catalog.exact_row_counts(conn)
    problems = differences(meta, migrations, counts)
    if problems:
        raise OperationFailed(
            "pitr-verify",
            f"the cluster was restored to '{meta.restore_point.name}', but database '{params.dbname}' does "
            f"not match the point's metadata: {'; '.join(problems[:SHOWN])}"
            + (f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""),
            "compare with python rollback_manager.py list-backups; nothing was deleted",
        )
    report(Event("ok", f"{len(counts)} tables, {sum(counts.values()):,} rows and {len(migrations)} applied "
                       "migrations match the restore point's metadata"))
