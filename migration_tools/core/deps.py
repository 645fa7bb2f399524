"""Fail with one clear line when the kit's Python packages are not installed."""

from __future__ import annotations

import importlib.util
import sys

# pglast is found here, never imported: only check-migrations' lint imports it.
REQUIRED = ("click", "django", "psycopg", "psutil", "pglast")


def require() -> None:
    missing = [m for m in REQUIRED if not importlib.util.find_spec(m)]
    if missing:
        print(
            f"migration_tools: Python package(s) {', '.join(missing)} not installed for {sys.executable}; "
            "run pip install -r requirements.txt in the project's virtual environment [python-deps]",
            file=sys.stderr,
        )
        raise SystemExit(2)
