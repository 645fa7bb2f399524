"""`validate-backup --deep`: restore into a scratch database and compare with the metadata.

Apart from the shallow and full checks (backup_validate), because it needs the database driver.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from migration_tools.backup import validate
from migration_tools.backup.metadata import BackupMeta
from migration_tools.backup.validate import Validation
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import KitError
from migration_tools.core.redact import redact
from migration_tools.pg import catalog, database_shape, databases, db, tools

SCRATCH_PREFIX = "kitcheck_"
SCRATCH_DB_BYTES = 40  # of the database's name; with the prefix and a token, well inside 63 bytes
RESTORE_JOBS = max(1, min(4, os.cpu_count() or 1))


def scratch_prefix(database: str) -> str:
    """`kitcheck_<db>_`: every scratch database of `database` starts so (side_databases finds them)."""
    return f"{SCRATCH_PREFIX}{databases.clip_identifier(database, SCRATCH_DB_BYTES)}_"


def scratch_name(database: str) -> str:
    return scratch_prefix(database) + secrets.token_hex(4)


def _admin_connect(params: ConnParams) -> psycopg.Connection[Any]:
    return databases.connect_maintenance(params, "validate")


def _create_scratch(conn: psycopg.Connection[Any], name: str, like: str) -> None:
    """A database shaped like `like` (database_shape.create_like), or a plain one from template0
    when this server has no database of that name."""
    if databases.exists(conn, like):
        database_shape.create_like(conn, name, like)
    else:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def drop_scratch(params: ConnParams, name: str) -> str:
    """Drop the scratch database; '' on success, else what went wrong."""
    try:
        with _admin_connect(params) as conn:
            databases.drop(conn, name)
        return ""
    except (KitError, psycopg.Error) as exc:
        return f"could not drop scratch database '{name}': {redact(str(exc)).strip()}"


def deep_check(dump: Path, meta: BackupMeta, params: ConnParams, jobs: int = RESTORE_JOBS) -> Validation:
    """Restore into a scratch database (`pg_restore --jobs`) and compare with the metadata; always
    drops it."""
    name = scratch_name(meta.database)
    created = False
    result = Validation(False, "", meta)
    try:
        try:
            with _admin_connect(params) as conn:
                _create_scratch(conn, name, meta.database)
                created = True
        except pg_errors.InsufficientPrivilege:
            result.unavailable = (
                f"role '{params.user}' may not create databases (CREATEDB), so no scratch database "
                "for a test restore"
            )
            return result
        except (KitError, psycopg.Error) as exc:
            text = exc.message if isinstance(exc, KitError) else redact(str(exc)).strip()
            result.unavailable = f"no scratch database for a test restore: {text}"
            return result
        restore = tools.run_pg_restore(
            [
                "--no-password",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                f"--jobs={jobs}",
                f"--dbname={name}",
                str(dump),
            ],
            params.with_db(name),
        )
        if restore.returncode != 0:
            result.reason = "the test restore failed: " + tools.tool_failure(
                "pg_restore", restore.returncode, restore.stderr
            )
            return result
        with db.connect(params, dbname=name, purpose="validate") as conn:
            counts = catalog.exact_row_counts(conn)
            migrations = catalog.applied_migrations(conn)
        problems = catalog.count_differences(meta.row_counts, counts)
        problem = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        if problem:
            result.reason = f"row counts differ after a test restore: {problem}"
            return result
        if migrations != sorted(meta.applied_migrations):
            result.reason = (
                f"applied migrations differ after a test restore: {len(migrations)} restored, "
                f"metadata lists {len(meta.applied_migrations)}"
            )
            return result
        total = sum(counts.values())
        result.ok = True
        result.passed.append(
            f"test restore: {len(counts)} tables, {total:,} rows and {len(migrations)} applied "
            "migrations match the metadata"
        )
        return result
    finally:
        if created:
            problem = drop_scratch(params, name)
            if problem:
                result.warnings.append(problem)


def validate_deep(dump: Path, params: ConnParams, jobs: int = RESTORE_JOBS) -> Validation:
    """The full check, then a test restore compared with the metadata."""
    result = validate.validate(dump, full=True, params=params, jobs=jobs)
    if not result.ok or result.meta is None:
        return result
    deep = deep_check(dump, result.meta, params, jobs)
    deep.passed[:0] = result.passed
    return deep
