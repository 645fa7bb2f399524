"""`list-backups`: backups newest first, by their metadata's time, each with whether it is valid."""

from __future__ import annotations

import json

import click

from migration_tools.backups import inventory
from migration_tools.backups.inventory import BackupEntry
from migration_tools.cli import output
from migration_tools.cli.options import database_option
from migration_tools.cli.runner import audited
from migration_tools.core import runtime
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
        directory = kit.paths.backups
        entries = inventory.list_backups(directory, None if all_databases else kit.params.dbname)
        valid = [e for e in entries if e.valid]
        kit.log.info(
            "list-backups outcome=ok backups=%d valid=%d dir=%s", len(entries), len(valid), directory
        )
        if as_json:
            output.line(
                json.dumps(
                    {"directory": str(directory), "backups": [entry_json(e) for e in entries]}, indent=2
                )
            )
            return
        if not entries:
            output.line(f"No backups in {directory}.")
            output.verdict(True, "no backups yet; take one with ./production_migrate.sh backup")
            return
        whose = "all databases" if all_databases else f"database '{kit.params.dbname}'"
        output.line(f"Backups of {whose} in {directory}, newest first:")
        print_table(entries)
        newest = f"; newest valid: {valid[0].dump.name}" if valid else "; none is valid"
        output.verdict(True, f"{len(entries)} backup(s), {len(valid)} valid{newest}")
