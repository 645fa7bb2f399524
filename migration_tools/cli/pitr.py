"""The backup commands with the pgBackRest tier (MIGRATION_KIT["BACKUP_FORMAT"] = "pgbackrest"):
what backup, list-backups, validate-backup, cleanup-backups, rollback and emergency-rollback say
and do when the bytes are pgBackRest's and a backup is a named restore point of the whole cluster."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import click

from migration_tools.backup import metadata, pgbackrest, pitr_meta, pitr_take
from migration_tools.backup.pitr_meta import PitrMeta
from migration_tools.cli import output
from migration_tools.core.errors import BadInput, OperationFailed
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size
from migration_tools.pg import deploy_lock
from migration_tools.restore import pitr

EMERGENCY_REASONS = ("pre-migrate", "manual")
EXPIRED = re.compile(r"remove expired backup (\S+)")


def enabled(kit: Kit) -> bool:
    return kit.settings.backup_format == "pgbackrest"


def is_point(name: str) -> bool:
    """A restore point's name (with or without .json): those go to the pgBackRest tier's commands,
    whatever the tier now; a dump's name to the pg_dump tiers' (a tier switch keeps both usable)."""
    return pitr_meta.MARKER in Path(name).name


def backup(kit: Kit, reason: str = "manual") -> None:
    result = pitr_take.create(kit, reason, report=output.show)
    meta, root = result.meta, kit.paths.root
    output.line(f"pgBackRest backup: {result.backup.label} ({result.backup.kind}, stanza {meta.stanza})")
    output.line(f"Restore point: {meta.restore_point.name} at LSN {meta.restore_point.lsn}")
    output.line(f"Metadata: {result.path.relative_to(root)}")
    output.line(f"Duration: {result.seconds:.2f}s")
    output.verdict(True, f"restore point {meta.restore_point.name} of {meta.database} is recorded after "
                         f"pgBackRest backup {result.backup.label}, its WAL archived, "
                         f"in {result.seconds:.2f}s")


def resolve(kit: Kit, name: str) -> tuple[Path, PitrMeta]:
    stem = Path(name).name.removesuffix(pitr_meta.SUFFIX)
    path = pitr_meta.path_for(kit.paths.backups, stem)
    return path, pitr_meta.load(path)


def _labels(kit: Kit) -> tuple[list[pgbackrest.BackupSet], set[str]]:
    found, _ = pgbackrest.sets(pitr_take.settings_of(kit))
    return found, {s.label for s in found if not s.error}


def list_points(kit: Kit, as_json: bool) -> None:
    found, labels = _labels(kit)
    points = pitr_meta.all_points(kit.paths.backups, kit.params.dbname)
    if as_json:
        click.echo(json.dumps({
            "format": "pgbackrest", "stanza": pitr_take.settings_of(kit).stanza,
            "backups": [{"label": s.label, "type": s.kind, "size_bytes": s.size, "repo_bytes": s.repo_size,
                         "stopped_at": datetime.fromtimestamp(s.stopped, timezone.utc).isoformat()}
                        for s in reversed(found)],
            "restore_points": [{"file": p.name, "name": m.restore_point.name if m else None,
                                "lsn": m.restore_point.lsn if m else None,
                                "backup": m.backup_label if m else None,
                                "created_at": m.created_at if m else None, "reason": m.reason if m else None,
                                "migrations": m.migration_count if m else None,
                                "valid": bool(m and m.backup_label in labels), "problem": why or None}
                               for p, m, why in points],
        }, indent=2))
        return
    output.line(f"pgBackRest backups of stanza '{pitr_take.settings_of(kit).stanza}', newest first:")
    for s in reversed(found):
        when = datetime.fromtimestamp(s.stopped, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        output.line(f"  {s.label}  {s.kind:<4}  {when}  cluster {human_size(s.size)}, "
                    f"repository {human_size(s.repo_size)}{'  (error)' if s.error else ''}")
    output.line(f"Restore points of '{kit.params.dbname}', newest first:")
    for path, meta, why in points:
        if meta is None:
            output.line(f"  {path.name}  invalid: {why}")
            continue
        state = "valid" if meta.backup_label in labels else "its backup was expired"
        output.line(f"  {meta.restore_point.name}  {meta.created_at}  {meta.reason:<12} after "
                    f"{meta.backup_label}  {meta.migration_count} migrations  {state}")
    valid = [m for _, m, _ in points if m and m.backup_label in labels]
    newest = f"; newest valid: {valid[0].restore_point.name}" if valid else "; none is valid"
    output.verdict(True, f"{len(points)} restore point(s), {len(valid)} valid{newest}; "
                         f"{len(found)} pgBackRest backup(s)")


def validate(kit: Kit, name: str) -> None:
    path, meta = resolve(kit, name)
    settings = pitr_take.settings_of(kit)
    output.line(f"Validating restore point {meta.restore_point.name} (pgBackRest verify and info) ...")
    found, archived = pgbackrest.sets(settings)
    backup_set = next((s for s in found if s.label == meta.backup_label), None)
    problem = ""
    if backup_set is None:
        problem = f"its backup {meta.backup_label} is not in the repository (expired)"
    elif backup_set.error:
        problem = f"pgBackRest marks backup {meta.backup_label} as having page errors"
    elif archived[8:] < meta.restore_point.wal_file[8:]:
        problem = f"the WAL holding it ({meta.restore_point.wal_file}) is not archived (newest: {archived})"
    if not problem:
        output.mark("ok", f"backup {meta.backup_label} is in the repository; WAL archived up to {archived}")
        try:
            pgbackrest.run(settings, "verify", what="pgbackrest verify")
        except OperationFailed as exc:
            problem = exc.message
    if problem:
        output.mark("fail", problem)
        raise OperationFailed("backup-invalid",
                              f"restore point {meta.restore_point.name} is invalid: {problem}",
                              "do not restore it; pick a valid one from list-backups")
    output.mark("ok", "pgbackrest verify: every file of the repository matches its checksum")
    output.verdict(True, f"restore point {path.name} is restorable (backup {meta.backup_label}, "
                         f"LSN {meta.restore_point.lsn})")


def cleanup(kit: Kit, dry_run: bool) -> None:
    """`pgbackrest expire` (RETENTION_FULL, else the stanza's own retention), then the kit's records
    of restore points whose backup is gone; nothing in the repository is deleted by the kit."""
    settings = pitr_take.settings_of(kit)
    options = [f"--repo1-retention-full={settings.retention_full}"] if settings.retention_full else []
    if dry_run:
        options.append("--dry-run")
    keeping = f" keeping {settings.retention_full} full backup(s)" if settings.retention_full else ""
    output.line(f"{'Would expire' if dry_run else 'Expiring'} through pgBackRest (expire{keeping})")
    said = pgbackrest.run(settings, "expire", *options, "--log-level-console=info", what="pgbackrest expire")
    expired = set(EXPIRED.findall(said))
    for label in sorted(expired):
        output.line(f"  {'would expire' if dry_run else 'expired'} backup {label}")
    _, labels = _labels(kit)
    points = pitr_meta.all_points(kit.paths.backups)
    gone = [(p, m) for p, m, _ in points if m and (m.backup_label not in labels or m.backup_label in expired)]
    for path, meta in gone:
        verb = "Would remove" if dry_run else "Removing"
        output.line(f"{verb} {path.name} (its backup {meta.backup_label} is expired)")
        if not dry_run:
            path.unlink(missing_ok=True)
            metadata.fsync_dir(path.parent)
    kit.log.info("cleanup-backups pgbackrest dry_run=%s expired=%s records=%d", dry_run, sorted(expired),
                 len(gone))
    would = "would be " if dry_run else ""
    output.verdict(True, f"{'dry run: ' if dry_run else ''}{len(expired)} pgBackRest backup(s) and "
                         f"{len(gone)} restore point record(s) {would}expired")


def newest_point(kit: Kit) -> tuple[Path, PitrMeta]:
    _, labels = _labels(kit)
    for path, meta, _ in pitr_meta.all_points(kit.paths.backups, kit.params.dbname):
        if meta is None or meta.reason not in EMERGENCY_REASONS:
            continue
        if meta.backup_label in labels:
            output.line(f"Newest valid restore point of '{kit.params.dbname}': {meta.restore_point.name}")
            return path, meta
        output.warn(f"skipping {path.name}: its backup {meta.backup_label} was expired")
    raise OperationFailed("no-valid-backup", f"no valid restore point of database '{kit.params.dbname}' in "
                          f"{kit.paths.backups}; nothing was changed",
                          "take one with ./production_migrate.sh backup")


def rollback(kit: Kit, meta: PitrMeta, *, yes: bool, dry_run: bool, side: Path | None,
             port: int | None) -> None:
    settings = pitr_take.settings_of(kit)
    pitr.check_backup_present(settings, meta)
    if side is None:
        pitr.require_server_commands(settings)
        for text in pitr.describe(meta, pitr.databases_now(kit.params)):
            output.line(text)
    else:
        if port is None:
            raise BadInput("pitr-side-port", "--side-datadir needs --side-port; nothing was changed",
                           "pass the port the copy should listen on")
        output.line(f"Restore of restore point '{meta.restore_point.name}' into {side} on port {port}; "
                    "the running cluster is not touched.")
    if dry_run:
        output.verdict(True, f"dry run: restore point {meta.restore_point.name} can be restored; "
                             "nothing was changed")
        return
    if not yes and not click.confirm("Restore the whole cluster to this point?" if side is None
                                     else "Restore the copy?", default=False):
        raise BadInput("not-confirmed", "rollback not confirmed; nothing was changed", "")
    if side is not None:
        done = pitr.restore_beside(kit, meta, side, port or 0, output.show)
        output.line(f"The restored copy runs from {done.where}; switch the application to it yourself")
        output.verdict(True, f"restore point {meta.restore_point.name} restored beside the cluster and "
                             "verified "
                             f"in {done.seconds:.1f}s")
        return
    with deploy_lock.hold(kit.params, "rollback"):
        pass  # refuse while a deploy runs; the lock cannot be held across the server's restart
    done = pitr.roll_back_in_place(kit, meta, output.show)
    output.line(f"To undo this rollback: python rollback_manager.py rollback {done.safety}")
    output.verdict(True, f"the cluster was rolled back to restore point {meta.restore_point.name} in "
                         f"{done.seconds:.1f}s; '{meta.database}' matches its metadata")
