"""What the migrating commands share: their options as a value, and per-migration progress lines."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from migration_tools.cli import output

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

    from migration_tools.deploy.migrate import MigrateOptions


def migrate_options(monitor: bool, interval: float, *, backup: bool = True,
                    auto_rollback: bool = True) -> MigrateOptions:
    from migration_tools.deploy.migrate import MigrateOptions

    return MigrateOptions(
        backup=backup,
        auto_rollback=auto_rollback,
        monitor=monitor,
        interval=interval,
        deep_backup=os.environ.get("PM_PROFILE") == "enhanced",
    )


def print_progress(event: str, migration: Migration, index: int, total: int, seconds: float) -> None:
    label = f"[{index}/{total}] {migration.app_label}.{migration.name}"
    if event == "start":
        output.live(f"{label} ...")
    else:
        output.end_live()
        output.line(f"{label} applied in {seconds:.2f}s")
