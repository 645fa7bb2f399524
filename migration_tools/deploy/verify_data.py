"""`verify-data`: record counts, orphaned rows, duplicates, schema health and rows lost since a backup.

The checks live in migration_tools.deploy.integrity; this module is the name the rest of the kit
(full-deploy's pipeline, the CLI command) imports them by.
"""

from __future__ import annotations

from migration_tools.deploy.integrity.report import (
    Duplicates,
    IntegrityReport,
    Loss,
    ModelCount,
    Orphans,
    UniqueViolation,
    new_problems,
    orphans_by_model,
)
from migration_tools.deploy.integrity.verify import VerifyOptions, applied_state_apps, verify_data_integrity

__all__ = [
    "Duplicates",
    "IntegrityReport",
    "Loss",
    "ModelCount",
    "Orphans",
    "UniqueViolation",
    "VerifyOptions",
    "applied_state_apps",
    "new_problems",
    "orphans_by_model",
    "verify_data_integrity",
]
