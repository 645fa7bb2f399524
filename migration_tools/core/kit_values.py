"""Strict readers of MIGRATION_KIT values: a wrong value stops the command (exit 2) naming the key."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from migration_tools.core.errors import BadInput


def bad(key: str, value: Any, want: str) -> BadInput:
    return BadInput("settings-value", f"MIGRATION_KIT['{key}'] is {value!r}, not {want}",
                    "fix it in the settings module, then run the command again")


def seconds(raw: dict[str, Any], key: str, default: float, *, whole: bool = False) -> float:
    """A positive number of seconds (or, `whole`, a whole number of at least 1); `default` when absent."""
    value = raw.get(key)
    if value is None:
        return default
    want = "a whole number of at least 1" if whole else "a positive number of seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(key, value, want)
    if not math.isfinite(value) or value <= 0 or (whole and (value != int(value) or value < 1)):
        raise bad(key, value, want)
    return float(value)


def megabytes(raw: dict[str, Any], key: str, default: float) -> float:
    """A number of megabytes, 0 or more; `default` when absent."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
        raise bad(key, value, "a number of megabytes (0 or more)")
    return float(value)


def url(raw: dict[str, Any], key: str) -> str:
    """An http(s) URL, or '' when absent or empty."""
    value = raw.get(key)
    if value is None or value == "":
        return ""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad(key, value, "an http:// or https:// URL")
    return str(value)
