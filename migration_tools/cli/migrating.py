"""The migrating commands' options as a value."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migration_tools.deploy.migrate import MigrateOptions


def migrate_options(monitor: bool, interval: float, *, backup: bool = True,
                    auto_rollback: bool = True, commit_each: bool = False) -> MigrateOptions:
    from migration_tools.deploy.migrate import MigrateOptions

    return MigrateOptions(
        backup=backup,
        auto_rollback=auto_rollback,
        monitor=monitor,
        interval=interval,
        deep_backup=os.environ.get("PM_PROFILE") == "enhanced",
        one_transaction=not commit_each,
    )
