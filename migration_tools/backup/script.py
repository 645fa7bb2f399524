"""The standalone restore script written beside each backup: rollback_scripts/rollback_<TS>.sh.

It is rendered from the shell template rollback_script.sh beside this module (shellcheck reads
it as it is): its `@PLACEHOLDER@`s are filled with the backup's values, and with what the kit
itself uses, so the two cannot drift apart: the side names (pg.databases.side_prefix, for the
backup's database), the stamp format, the maintenance-database policy, and the statements that
create a database shaped like the target (pg.database_shape, run with psql's \\gexec).

The script restores either tier (a custom-format file or a directory-format directory; for the
latter it checks the SHA-256 of the manifest backup.tiers defines). It needs bash, coreutils
(sha256sum, sort), findutils and the PostgreSQL client tools (psql, pg_restore),
not the kit. It reads DB_NAME/DB_HOST/DB_PORT/DB_USER/DB_PASSWORD from the environment; no
secret is written in it.
"""

from __future__ import annotations

import re
import shlex
from importlib import resources
from pathlib import Path

from migration_tools import __version__
from migration_tools.backup import metadata
from migration_tools.backup.metadata import BackupMeta
from migration_tools.pg import database_shape, databases

SCRIPT_MODE = 0o700
TEMPLATE_NAME = "rollback_script.sh"
_PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")
_BODY_START = "set -euo pipefail"


def template() -> str:
    """The template's text, read from the installed package."""
    return resources.files("migration_tools.backup").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def _sql_table(key: str) -> str:
    """'schema.table' -> a quoted regclass text: "schema"."table"."""
    schema, _, table = key.partition(".")
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))


def _words(values: tuple[str, ...] | list[str]) -> str:
    return " ".join(shlex.quote(v) for v in values)


def _fill(text: str, values: dict[str, str]) -> str:
    """Replace every placeholder in one pass (a value is never read again); an unknown one fails."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) not in values:
            raise KeyError(f"{TEMPLATE_NAME}: no value for {match.group(0)}")
        return values[match.group(0)]

    return _PLACEHOLDER.sub(value, text)


def render(meta: BackupMeta, dump_path: Path) -> str:
    """The script's text; values are shell-quoted in code, plain in the header; no secret in it."""
    name = metadata.script_path_for(dump_path, Path(".")).name
    counts = "\n".join(f"{_sql_table(key)}\t{count}" for key, count in sorted(meta.row_counts.items()))
    plain = {
        "@NAME@": name,
        "@FILE@": meta.file,
        "@FORMAT@": meta.format,
        "@DATABASE@": meta.database,
        "@HOST@": meta.host,
        "@PORT@": str(meta.port),
        "@CREATED@": meta.created_at,
        "@REASON@": meta.reason,
        "@MIGRATIONS@": str(len(meta.applied_migrations)),
        "@TABLES@": str(len(meta.row_counts)),
        "@ROWS@": f"{sum(meta.row_counts.values()):,}",
        "@VERSION@": __version__,
    }
    quoted = {
        "@NAME@": shlex.quote(name),
        "@FILE@": shlex.quote(meta.file),
        "@PATH@": shlex.quote(str(Path(dump_path).resolve())),
        "@SHA256@": shlex.quote(meta.sha256),
        "@FORMAT@": shlex.quote(meta.format),
        "@DATABASE@": shlex.quote(meta.database),
        "@RESTORE_PREFIX@": shlex.quote(databases.side_prefix(meta.database, databases.RESTORE_TAG)),
        "@ASIDE_PREFIX@": shlex.quote(databases.side_prefix(meta.database, databases.ASIDE_TAG)),
        "@STAMP_TIME_FORMAT@": shlex.quote(databases.STAMP_TIME_FORMAT),
        "@STAMP_PATTERN@": shlex.quote(databases.STAMP_PATTERN),
        "@MAINTENANCE_DBS@": _words(databases.MAINTENANCE_DBS),
        "@UNUSABLE_DB_ERRORS@": _words(databases.UNUSABLE_DB_ERRORS),
        "@COUNTS@": counts,
        "@CREATE_LIKE_SQL@": database_shape.psql_query(database_shape.CREATE_LIKE_SQL).rstrip("\n"),
        "@COPY_PROPERTIES_SQL@": database_shape.psql_query(database_shape.COPY_PROPERTIES_SQL).rstrip("\n"),
    }
    head, sep, body = template().partition(_BODY_START)
    head = _fill(head, {key: " ".join(value.split()) for key, value in plain.items()})
    return head + sep + _fill(body, quoted)


def write(meta: BackupMeta, dump_path: Path, script_path: Path) -> Path:
    """Write the script atomically (hidden temp name, fsync, rename), owner-only and executable."""
    metadata.write_atomic(script_path, render(meta, dump_path), mode=SCRIPT_MODE)
    return script_path
