"""The lint of a pending plan, end to end: collect each migration's SQL, parse and classify it,
ask the catalog about the tables it touches, weigh the plan. The CLI renders the report."""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration

from migration_tools.core.djangoenv import ConnParams
from migration_tools.lint import analyse, collect, sizes
from migration_tools.lint.analyse import LintReport
from migration_tools.lint.settings import LintSettings


def lint_plan(
    executor: MigrationExecutor,
    migrations: list[Migration],
    connection: BaseDatabaseWrapper,
    settings: LintSettings,
    *,
    params: ConnParams | None,
    one_transaction: bool,
) -> LintReport:
    """Every finding of the plan; `params` None is --offline (no catalog, sizes unknown)."""
    collected = collect.collect(executor, migrations, connection, offline=params is None)
    if params is None:
        statements = analyse.parse(collected, None)
        catalog = sizes.Catalog()
    else:
        with sizes.connect(params) as conn:
            version = sizes.version(conn)
            statements = analyse.parse(collected, version)
            catalog = sizes.read(conn, analyse.names(statements), version)
        catalog.lock_timeout = session_lock_timeout(connection)
    return analyse.analyse(statements, collected, catalog, settings, one_transaction=one_transaction)


def session_lock_timeout(connection: BaseDatabaseWrapper) -> str:
    """lock_timeout as the migration's own session sees it (DATABASES OPTIONS, role, database)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        row = cursor.fetchone()
    return str(row[0]) if row else ""
