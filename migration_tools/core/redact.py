"""Keep secrets out of logs, reports and error messages."""

from __future__ import annotations

import os
import re

_SECRETS: set[str] = set()

_PATTERNS = [
    re.compile(r"(?i)(password|passwd|pgpassword|secret)(\s*[=:]\s*)('[^']*'|\"[^\"]*\"|\S+)"),
    re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)([^@\s]+)(@)"),
]
MASK = "********"


def register_secret(value: str | None) -> None:
    if value and len(value) >= 3:
        _SECRETS.add(value)


def register_environment_secrets() -> None:
    register_secret(os.environ.get("DB_PASSWORD"))
    register_secret(os.environ.get("PGPASSWORD"))


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
