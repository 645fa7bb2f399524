"""For this run only, the database connection's schema editor becomes a zero-downtime one.

django-pg-zero-downtime-migrations is a database backend; rather than make the operator switch
ENGINE, the kit replaces the alias's connection object for its own process with a subclass of
whatever PostgreSQL backend the project uses (PostGIS and custom subclasses included) whose
schema editor is the library's mixin, then the kit's retries, then the project's own editor.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connections
from django_zero_downtime_migrations.backends.postgres.schema import (
    DatabaseSchemaEditorMixin,
    UnsafeOperationWarning,
)

from migration_tools.core.errors import BadInput
from migration_tools.zerodowntime.retry import Retries, RetryingEditorMixin
from migration_tools.zerodowntime.settings import ZeroDowntimeSettings

LIBRARY_SETTINGS = (
    "ZERO_DOWNTIME_MIGRATIONS_LOCK_TIMEOUT",
    "ZERO_DOWNTIME_MIGRATIONS_STATEMENT_TIMEOUT",
    "ZERO_DOWNTIME_MIGRATIONS_FLEXIBLE_STATEMENT_TIMEOUT",
    "ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE",
    "ZERO_DOWNTIME_MIGRATIONS_IDEMPOTENT_SQL",
)


def retries_for(config: ZeroDowntimeSettings) -> Retries:
    return Retries(tries=config.tries, base_delay=config.retry_delay,
                   lock_timeout=config.pg_interval(config.lock_timeout),
                   statement_timeout=config.pg_interval(config.statement_timeout))


@contextlib.contextmanager
def zero_downtime_connection(alias: str, config: ZeroDowntimeSettings, retries: Retries,
                             gate: Any = None) -> Iterator[None]:
    """Within the block, `connections[alias]` migrates the zero-downtime way; restored after."""
    original = connections[alias]
    if original.vendor != "postgresql":
        raise BadInput("zero-downtime-engine",
                       f"database '{alias}' uses {original.settings_dict.get('ENGINE')}, not PostgreSQL",
                       "zero-downtime works on PostgreSQL backends only; use migrate for this database")
    editor = type("ZeroDowntimeSchemaEditor",
                  (DatabaseSchemaEditorMixin, RetryingEditorMixin, original.SchemaEditorClass),
                  {"kit_retries": retries, "kit_gate": gate,
                   "kit_build_memory_kb": int(config.index_build_memory * 1024)})
    wrapper_class = type(type(original).__name__, (type(original),), {"SchemaEditorClass": editor})
    original.close()
    replacement = wrapper_class(original.settings_dict, alias)
    saved = {name: getattr(settings, name) for name in LIBRARY_SETTINGS if hasattr(settings, name)}
    values: dict[str, Any] = {
        "ZERO_DOWNTIME_MIGRATIONS_LOCK_TIMEOUT": retries.lock_timeout,
        "ZERO_DOWNTIME_MIGRATIONS_STATEMENT_TIMEOUT": retries.statement_timeout,
        "ZERO_DOWNTIME_MIGRATIONS_FLEXIBLE_STATEMENT_TIMEOUT": True,
        "ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE": False,  # the kit's lint decides, with its recipes
        "ZERO_DOWNTIME_MIGRATIONS_IDEMPOTENT_SQL": True,  # a statement tried again, or undone, is safe
    }
    for name, value in values.items():
        setattr(settings, name, value)
    connections[alias] = replacement
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnsafeOperationWarning)
            yield
    finally:
        replacement.close()
        connections[alias] = original
        for name in LIBRARY_SETTINGS:
            if name in saved:
                setattr(settings, name, saved[name])
            else:
                with contextlib.suppress(AttributeError):
                    delattr(settings, name)
