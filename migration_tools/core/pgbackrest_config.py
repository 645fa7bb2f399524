"""MIGRATION_KIT["PGBACKREST"]: the pgBackRest tier's settings (BACKUP_FORMAT "pgbackrest").

    "PGBACKREST": {
        "STANZA": "main",                        # required: the stanza backing up this cluster
        "COMMAND": ["pgbackrest"],               # argv prefix that runs pgBackRest where it can read
                                                 # the data directory, e.g. ["sudo", "-u", "postgres",
                                                 # "pgbackrest"] or ["ssh", "postgres@db1", "pgbackrest"]
        "BACKUP_TYPE": "incr",                   # incr (default; full when none exists), diff, full
        "RETENTION_FULL": 2,                     # cleanup-backups: full backups `expire` keeps
        "SERVER_STOP_COMMAND": [...],            # rollback in place stops the server with this ...
        "SERVER_START_COMMAND": [...],           # ... and starts it with this (refused without both)
        "SIDE_START_COMMAND": [..."{datadir}", "{port}"...],  # rollback --side-datadir starts the copy
        "RECOVERY_TIMEOUT": 600,                 # seconds the restored server may take to be up
    }

Strict: a wrong value stops every command at start (exit 2) naming it. Commands are argv lists,
never shell strings, so nothing is re-parsed by a shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migration_tools.core.errors import BadInput, status_command

BACKUP_TYPES = ("incr", "diff", "full")
DEFAULT_RECOVERY_TIMEOUT = 600.0


@dataclass(frozen=True)
class PgBackRestSettings:
    stanza: str
    command: tuple[str, ...] = ("pgbackrest",)
    backup_type: str = "incr"
    retention_full: int | None = None
    stop_command: tuple[str, ...] = ()
    start_command: tuple[str, ...] = ()
    side_start_command: tuple[str, ...] = ()
    recovery_timeout: float = DEFAULT_RECOVERY_TIMEOUT


def _bad(key: str, value: Any, want: str) -> BadInput:
    return BadInput(
        "settings-pgbackrest",
        f"MIGRATION_KIT['PGBACKREST']['{key}'] is {value!r}, not {want}",
        f"fix it in the settings module, then run {status_command()}",
    )


def _argv(raw: Mapping[str, Any], key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise _bad(key, value, "a non-empty list of strings (the program and its arguments)")
    return tuple(value)


def pgbackrest_settings(raw: Any) -> PgBackRestSettings:
    """The PGBACKREST dict, checked; BadInput (exit 2) naming the first wrong key."""
    if not isinstance(raw, Mapping):
        raise BadInput(
            "settings-pgbackrest",
            "MIGRATION_KIT['BACKUP_FORMAT'] is 'pgbackrest' but MIGRATION_KIT['PGBACKREST'] is not a dict",
            f"add MIGRATION_KIT['PGBACKREST'] = {{'STANZA': ...}} (docs/scale.md); run {status_command()}",
        )
    stanza = raw.get("STANZA")
    if not isinstance(stanza, str) or not stanza.strip():
        raise _bad("STANZA", stanza, "the name of a pgBackRest stanza")
    kind = raw.get("BACKUP_TYPE", "incr")
    if kind not in BACKUP_TYPES:
        raise _bad("BACKUP_TYPE", kind, "one of " + ", ".join(BACKUP_TYPES))
    keep = raw.get("RETENTION_FULL")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise _bad("RETENTION_FULL", keep, "a whole number of at least 1")
    timeout = raw.get("RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise _bad("RECOVERY_TIMEOUT", timeout, "a number of seconds above 0")
    side = _argv(raw, "SIDE_START_COMMAND")
    if side and not any("{datadir}" in part for part in side):
        raise _bad("SIDE_START_COMMAND", list(side), "a command naming {datadir} (and {port})")
    return PgBackRestSettings(
        stanza=stanza.strip(),
        command=_argv(raw, "COMMAND", ("pgbackrest",)),
        backup_type=str(kind),
        retention_full=keep,
        stop_command=_argv(raw, "SERVER_STOP_COMMAND"),
        start_command=_argv(raw, "SERVER_START_COMMAND"),
        side_start_command=side,
        recovery_timeout=float(timeout),
    )
