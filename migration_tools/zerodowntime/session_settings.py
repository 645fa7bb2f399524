"""Settings changed on a session for one statement, and put back after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def for_one_statement(cursor: Any, values: dict[str, str]) -> Iterator[None]:
    """SET each setting of `values` on the cursor's session, then put back what it was."""
    names = list(values)
    cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
    before = cursor.fetchone()
    for name, value in values.items():
        cursor.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # an aborted transaction: its rollback resets them
            for name, old in zip(names, before, strict=True):
                cursor.execute(f"SET {name} = '{old}'")
