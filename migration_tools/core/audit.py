"""The audit trail: migration.log and rollback.log, one redacted line per event, owner-only.

This module is the only writer of both files (the shell scripts log through
`python -m migration_tools.cli.gate log`), so every line has the same shape and one clock:
`2026-11-30T04:45:00+00:00 ERROR [status] user=deploy message` (UTC, with its offset).

One event, one line: a message that spans lines (a PostgreSQL error with its DETAIL, HINT or
CONTEXT, a tool's stderr) and a traceback logged with `log.exception` are joined with ' | ', so
every line of the file starts with its time and `grep` finds the whole event.
"""

from __future__ import annotations

import getpass
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from migration_tools.core.redact import redact

LINE_JOIN = " | "


def one_line(text: str) -> str:
    """The lines of `text`, stripped and joined with ' | '; blank lines dropped."""
    return LINE_JOIN.join(part.strip() for part in text.splitlines() if part.strip())


class _RedactingFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="seconds")

    def format(self, record: logging.LogRecord) -> str:
        return one_line(redact(super().format(record)))  # redacted first: as the lines were


class _CountingHandler(logging.Handler):
    """Counts errors and warnings so reports can say how many a run logged."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors = 0
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
        else:
            self.warnings += 1


counter = _CountingHandler()


def open_owner_only(path: Path) -> None:
    """Create the file 0600 if missing; tighten it if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def setup(log_path: Path, command: str) -> logging.Logger:
    """Attach the audit file to the kit's logger; returns the logger for this command."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    open_owner_only(log_path)
    logger = logging.getLogger("migration_kit")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    user = _os_user()
    file_handler.setFormatter(
        _RedactingFormatter(f"%(asctime)s %(levelname)s [{command}] user={user} %(message)s")
    )
    logger.addHandler(file_handler)
    logger.addHandler(counter)
    return logger


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def get() -> logging.Logger:
    return logging.getLogger("migration_kit")


def record(log_path: Path, command: str, level: int, message: str) -> None:
    """Write one line and close the file: for a process that only logs (the shell scripts' gate)."""
    logger = setup(log_path, command)
    logger.log(level, "%s", message)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
