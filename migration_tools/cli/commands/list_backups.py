"""`list-backups`: backups newest first, by their metadata's time, each with whether it is valid;
then the databases rollbacks kept (when the server can be reached)."""

from __future__ import annotations

import json

import click

from migration_tools.backup import inventory
from migration_tools.backup import side_databases as sides
from migration_tools.backup.inventory import BackupEntry
from migration_tools.cli import output, pitr
from migration_tools.cli.options import database_option
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
from migration_tools.core.errors import KitError
from migration_tools.core.runtime import Kit
from migration_tools.core.sizes import human_size


def created_text(entry: BackupEntry) -> str:
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


def kept_json(side: sides.SideDatabase) -> dict[str, object]:
    return {
        "name": side.name,
        "kept_at": side.created.isoformat() if side.created else None,
        "size_bytes": side.size,
    }


def kept_databases(kit: Kit) -> list[sides.SideDatabase] | None:
    """The databases rollbacks kept beside this one, newest first; None when the server is out of reach."""
    try:
        return sides.inspect(kit.params, "list-backups").kept
    except KitError as exc:
        output.warn(f"kept databases not listed: {exc.message}")
        kit.log.warning("list-backups kept databases not listed: %s [%s]", exc.message, exc.error_id)
        return None


def print_kept(database: str, kept: list[sides.SideDatabase]) -> None:
    output.line(f"Databases kept beside '{database}' (replaced by rollbacks or their undo), newest first:")
    rows = [("Database", "Kept since (UTC)", "Size")]
    for side in kept:
        when = side.created.strftime("%Y-%m-%d %H:%M:%S") if side.created else "?"
        rows.append((side.name, when, "?" if side.size is None else human_size(side.size)))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for row in rows:
        output.line("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:2])) + "  " + row[2])


def print_table(entries: list[BackupEntry]) -> None:
    rows = [("File", "Created (UTC)", "Size", "Database", "Reason", "Migrations", "Valid")]
    for e in entries:
        rows.append(
            (
                e.dump.name,
                created_text(e),
                human_size(e.size),
                e.meta.database if e.meta else "?",
                e.meta.reason if e.meta else "?",
                str(e.meta.migration_count) if e.meta else "?",
                "yes" if e.valid else f"NO: {e.reason}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        output.line("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:6])) + "  " + row[6])


@click.command("list-backups")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON on stdout.")
@click.option("--all", "all_databases", is_flag=True, help="Also list the backups of other databases.")
def command(alias: str, as_json: bool, all_databases: bool) -> None:
    """List this database's backups newest first: file, created, size, database, reason, valid."""
    kit = runtime.start("list-backups", alias, log_name="rollback", apps=False)
    with audited(kit, "list-backups"):
        if pitr.enabled(kit):
            pitr.list_points(kit, as_json)
            return
        directory = kit.paths.backups
        entries = inventory.list_backups(directory, None if all_databases else kit.params.dbname)
        valid = [e for e in entries if e.valid]
        kept = kept_databases(kit)
        kit.log.info(
            "list-backups outcome=ok backups=%d valid=%d kept_databases=%s dir=%s",
            len(entries), len(valid), "?" if kept is None else len(kept), directory,
        )
        if as_json:
            listing = {
                "directory": str(directory),
                "backups": [entry_json(e) for e in entries],
                "kept_databases": None if kept is None else [kept_json(d) for d in kept],
            }
            output.line(json.dumps(listing, indent=2))
            return
        if entries:
            whose = "all databases" if all_databases else f"database '{kit.params.dbname}'"
            output.line(f"Backups of {whose} in {directory}, newest first:")
            print_table(entries)
        else:
            output.line(f"No backups in {directory}.")
        if kept:
            print_kept(kit.params.dbname, kept)
        total = sum(d.size or 0 for d in kept or [])
        beside = f"; {len(kept)} kept database(s), {human_size(total)}" if kept else ""
        if not entries:
            output.verdict(True, f"no backups yet; take one with ./production_migrate.sh backup{beside}")
            return
        newest = f"; newest valid: {valid[0].dump.name}" if valid else "; none is valid"
        output.verdict(True, f"{len(entries)} backup(s), {len(valid)} valid{newest}{beside}")
