"""`validate-backup --deep`: restore into a scratch database and compare with the metadata.

Apart from the shallow and full checks (backup_validate), because it needs the database driver.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from migration_tools import db, pgtools
from migration_tools.backup_meta import BackupMeta
from migration_tools.backup_validate import Validation, compare_counts, tool_error
from migration_tools.djangoenv import ConnParams
from migration_tools.errors import KitError
from migration_tools.redact import redact

MAINTENANCE_DB = "postgres"
SCRATCH_PREFIX = "kitcheck_"
RESTORE_JOBS = max(1, min(4, os.cpu_count() or 1))


def read_applied_migrations(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Sorted (app, name) rows of django_migrations; empty when the table does not exist."""
    if db.scalar(conn, "SELECT to_regclass('django_migrations')") is None:
        return []
    rows = conn.execute("SELECT app, name FROM django_migrations ORDER BY app, name").fetchall()
    return [(str(app), str(name)) for app, name in rows]



def scratch_name(database: str) -> str:
    return f"{SCRATCH_PREFIX}{database[:40]}_{secrets.token_hex(4)}"


def _admin_connect(params: ConnParams) -> psycopg.Connection[Any]:
    try:
        return db.connect(params, dbname=MAINTENANCE_DB, purpose="validate")
    except KitError:
        return db.connect(params, purpose="validate")


def _create_scratch(conn: psycopg.Connection[Any], name: str, like: str) -> None:
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = %s",
        (like,),
    ).fetchone()
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if row:
        query = query + sql.SQL(" ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            sql.Literal(row[0]), sql.Literal(row[1]), sql.Literal(row[2])
        )
    conn.execute(query)


def drop_scratch(params: ConnParams, name: str) -> str:
    """Drop the scratch database; '' on success, else what went wrong."""
    try:
        with _admin_connect(params) as conn:
            force = sql.SQL(" WITH (FORCE)") if db.server_version_num(conn) >= 130000 else sql.SQL("")
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force)
        return ""
    except (KitError, psycopg.Error) as exc:
        return f"could not drop scratch database '{name}': {redact(str(exc)).strip()}"


def deep_check(dump: Path, meta: BackupMeta, params: ConnParams) -> Validation:
    """Restore into a scratch database and compare with the metadata; always drops it."""
    name = scratch_name(meta.database)
    created = False
    result = Validation(False, "", meta)
    try:
        try:
            with _admin_connect(params) as conn:
                _create_scratch(conn, name, meta.database)
                created = True
        except psycopg.Error as exc:
            result.reason = (
                f"cannot create a scratch database for the test restore: {redact(str(exc)).strip()}"
            )
            return result
        restore = pgtools.run_tool(
            "pg_restore",
            [
                "--no-password",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                f"--jobs={RESTORE_JOBS}",
                f"--dbname={name}",
                str(dump),
            ],
            params.with_db(name),
        )
        if restore.returncode != 0:
            result.reason = f"the test restore failed: {tool_error(restore.stderr)}"
            return result
        with db.connect(params, dbname=name, purpose="validate") as conn:
            counts = db.exact_row_counts(conn)
            migrations = read_applied_migrations(conn)
        problem = compare_counts(meta.row_counts, counts)
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
