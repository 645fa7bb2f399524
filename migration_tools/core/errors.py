"""Exit codes and the kit's error type: a stable ID, a one-line message and a hint."""

from __future__ import annotations

import os
import sys
from typing import IO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ROLLED_BACK = 3


def prog_name() -> str:
    """The command the operator typed; the shell wrappers pass it down in PM_PROG."""
    return os.environ.get("PM_PROG") or "migration_tools"


def status_command() -> str:
    """The command that shows where the database stands (rollback_manager.py has no `status`)."""
    prog = prog_name()
    return "./production_migrate.sh status" if prog.startswith("rollback_manager") else f"{prog} status"


class KitError(Exception):
    """A failure the operator can act on. Subclasses set the exit code; the CLI layer maps it."""

    exit_code = EXIT_FAILED

    def __init__(self, error_id: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message
        self.hint = hint

    def line(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return f"{prog_name()}: {text} [{self.error_id}]"

    def show(self, file: IO[str] | None = None) -> None:
        print(self.line(), file=file or sys.stderr, flush=True)


class BadInput(KitError):
    """Bad usage, configuration or input: nothing was changed."""

    exit_code = EXIT_USAGE


class OperationFailed(KitError):
    exit_code = EXIT_FAILED


class RolledBack(KitError):
    """The operation failed and the prior state was restored."""

    exit_code = EXIT_ROLLED_BACK
