"""`rollback_manager.py list-backups | validate-backup | cleanup-backups`: thin click commands."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import click

from migration_tools import backup_catalog, backup_validate, runtime, ui
from migration_tools.backup_catalog import BackupEntry
from migration_tools.clirun import database_option
from migration_tools.errors import BadInput, KitError, OperationFailed
from migration_tools.runtime import Kit
from migration_tools.ui import human_size

PROG = "python rollback_manager.py"



@contextlib.contextmanager
def audited(kit: Kit, what: str) -> Iterator[None]:
    """Log the outcome of one command to rollback.log (who and when come from the formatter)."""
    try:
        yield
    except KitError as exc:
        kit.log.error("%s outcome=failed %s", what, exc.line())
        raise
    except BaseException as exc:
        kit.log.error("%s outcome=failed %s", what, type(exc).__name__)
        raise


def _created(entry: BackupEntry) -> str:
    return entry.created.strftime("%Y-%m-%d %H:%M:%S") + ("" if entry.meta else " (mtime)")


def entry_json(entry: BackupEntry) -> dict[str, object]:
    meta = entry.meta
    return {
        "file": entry.dump.name,
        "path": str(entry.dump),
        "created_at": meta.created_at if meta else None,
        "size_bytes": entry.size,
        "database": meta.database if meta else None,
        "reason": meta.reason if meta else None,
        "migrations": meta.migration_count if meta else None,
        "sha256": meta.sha256 if meta else None,
        "valid": entry.valid,
        "problem": entry.reason or None,
    }


def print_table(entries: list[BackupEntry]) -> None:
    rows = [("File", "Created (UTC)", "Size", "Database", "Migrations", "Valid")]
    for e in entries:
        rows.append(
            (
                e.dump.name,
                _created(e),
                human_size(e.size),
                e.meta.database if e.meta else "?",
                str(e.meta.migration_count) if e.meta else "?",
                "yes" if e.valid else f"NO: {e.reason}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        ui.line("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])


@click.command("list-backups")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON on stdout.")
def list_backups_cmd(alias: str, as_json: bool) -> None:
    """List backups newest first: file, created, size, database, migrations, valid."""
    kit = runtime.start("list-backups", alias, log_name="rollback", apps=False)
    with audited(kit, "list-backups"):
        directory = kit.paths.backups
        entries = backup_catalog.list_backups(directory)
        valid = [e for e in entries if e.valid]
        kit.log.info(
            "list-backups outcome=ok backups=%d valid=%d dir=%s", len(entries), len(valid), directory
        )
        if as_json:
            ui.line(
                json.dumps(
                    {"directory": str(directory), "backups": [entry_json(e) for e in entries]}, indent=2
                )
            )
            return
        if not entries:
            ui.line(f"No backups in {directory}.")
            ui.verdict(True, "no backups yet; take one with ./production_migrate.sh backup")
            return
        ui.line(f"Backups in {directory}, newest first:")
        print_table(entries)
        newest = f"; newest valid: {valid[0].dump.name}" if valid else "; none is valid"
        ui.verdict(True, f"{len(entries)} backup(s), {len(valid)} valid{newest}")


def resolve_backup(path_text: str, backups: Path) -> Path:
    """PATH as given, else a name inside the backups directory; a .json means its dump."""
    candidates = [Path(path_text), backups / path_text]
    for candidate in candidates:
        dump = candidate.with_suffix(".sql") if candidate.suffix == ".json" else candidate
        if dump.is_file() or (candidate.suffix == ".json" and candidate.is_file()):
            return dump
    raise BadInput(
        "backup-missing",
        f"backup '{path_text}' not found (looked at it and in {backups})",
        f"run {PROG} list-backups to see the backups",
    )


@click.command("validate-backup")
@click.argument("path")
@click.option("--full", is_flag=True, help="Also decompress every data block (pg_restore -f /dev/null).")
@click.option(
    "--deep",
    is_flag=True,
    help="Also restore into a scratch database and compare row counts (implies --full).",
)
@database_option
def validate_backup_cmd(path: str, full: bool, deep: bool, alias: str) -> None:
    """Check a backup: metadata, SHA-256, table of contents; exit 0 valid, 1 invalid."""
    kit = runtime.start("validate-backup", alias, log_name="rollback", apps=False)
    with audited(kit, f"validate-backup {path}"):
        dump = resolve_backup(path, kit.paths.backups)
        level = "deep" if deep else "full" if full else "shallow"
        ui.line(f"Validating {dump} ({level}) ...")
        result = backup_validate.validate(dump, full=full, deep=deep, params=kit.params)
        for text in result.passed:
            ui.mark("ok", text)
        for text in result.warnings:
            ui.warn(text)
            kit.log.warning("validate-backup %s", text)
        if not result.ok:
            ui.mark("fail", result.reason)
            raise OperationFailed(
                "backup-invalid",
                f"backup {dump.name} is invalid: {result.reason}",
                f"do not restore it; run {PROG} list-backups and pick a valid one",
            )
        kit.log.info("validate-backup outcome=ok file=%s level=%s", dump.name, level)
        ui.verdict(True, f"backup {dump.name} is valid ({level} check)")


@click.command("cleanup-backups")
@click.option(
    "--keep", type=int, default=None, metavar="N", help="Valid backups to keep (default: settings, 7)."
)
@click.option(
    "--older-than",
    "older_than",
    type=float,
    default=None,
    metavar="DAYS",
    help="Remove only backups older than this many days (and beyond --keep).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@database_option
def cleanup_backups_cmd(keep: int | None, older_than: float | None, dry_run: bool, alias: str) -> None:
    """Remove old valid backups beyond retention and leftovers of interrupted backups."""
    kit = runtime.start("cleanup-backups", alias, log_name="rollback", apps=False)
    with audited(kit, "cleanup-backups"):
        keep = kit.settings.retention if keep is None else keep
        if keep < 1:
            raise BadInput(
                "keep-invalid",
                f"--keep {keep} would leave no backup (the newest valid backup is never removed)",
                "pass --keep 1 or more",
            )
        if older_than is not None and older_than < 0:
            raise BadInput(
                "older-than-invalid", f"--older-than {older_than:g} is negative", "pass 0 or more days"
            )
        plan = backup_catalog.plan_cleanup(
            kit.paths.backups, kit.paths.rollback_scripts, keep=keep, older_than_days=older_than
        )
        verb = "Would remove" if dry_run else "Removing"
        for entry in plan.remove:
            ui.line(f"{verb} {entry.dump.name} (created {_created(entry)}, {human_size(entry.size)})")
        for path in plan.leftovers:
            ui.line(f"{verb} leftover {path.name} (from an interrupted backup)")
        for path in plan.busy:
            ui.warn(f"skipped {path.name}: a running backup is writing it")
        for entry in plan.invalid:
            ui.warn(
                f"kept invalid backup {entry.dump.name} ({entry.reason}); inspect it or delete it by hand"
            )
        newest = plan.keep[0].dump.name if plan.keep else "none"
        summary = (
            f"{len(plan.remove)} backup(s) and {len(plan.leftovers)} leftover file(s); "
            f"keeping {len(plan.keep)} valid backup(s), newest {newest}"
        )
        if dry_run:
            kit.log.info("cleanup-backups outcome=ok dry-run would remove %s", summary)
            ui.verdict(True, f"dry run: would remove {summary}; nothing was changed")
            return
        removed = backup_catalog.apply_cleanup(plan, kit.paths.rollback_scripts)
        for path in removed:
            kit.log.info("cleanup-backups removed %s", path)
        kit.log.info("cleanup-backups outcome=ok removed %s", summary)
        ui.verdict(True, f"removed {summary}")
