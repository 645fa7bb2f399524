"""The lint's settings: the size threshold and accepted migrations, from MIGRATION_KIT and the
migration classes. Pure functions over plain values.

    MIGRATION_KIT = {
        "LINT_SIZE_THRESHOLD": "10MB",          # bytes (int) or "512kB" / "10MB" / "1GB"
        "LINT_ACCEPT": {                          # accepted findings per migration, with reasons
            "contenttypes.0002_remove_content_type_name": ["Django's own; no running code reads it"],
            "medications.0003_doselog_scheduled_at_idx": {"create-index": "built at night"},
        },
    }

    class Migration(migrations.Migration):
        migration_kit_accept = ["the table holds 200 rows in production"]   # every finding
        migration_kit_accept = {"drop-column": "released code stopped reading it in 2.3"}  # one rule
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migration_tools.core.errors import BadInput

DEFAULT_THRESHOLD = 10 * 1024 * 1024
ACCEPT_ATTRIBUTE = "migration_kit_accept"
UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(value: Any) -> int:
    """Bytes of an int or a PostgreSQL-style size ("10MB", "512 kB"); BadInput otherwise."""
    if isinstance(value, bool):
        raise _bad_size(value)
    if isinstance(value, int):
        if value < 0:
            raise _bad_size(value)
        return value
    text = str(value).strip().lower().replace(" ", "")
    digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(digits):] or "b"
    if not digits.isdigit() or unit not in UNITS:
        raise _bad_size(value)
    return int(digits) * UNITS[unit]


def _bad_size(value: Any) -> BadInput:
    return BadInput(
        "lint-settings",
        f"MIGRATION_KIT['LINT_SIZE_THRESHOLD'] {value!r} is not a size",
        "give bytes (10485760) or a size such as '10MB'",
    )


def accept_reasons(marker: Any, where: str) -> dict[str, str]:
    """{rule id or "*": reason} of one migration's marker; "*" accepts every finding.

    A marker is a reason (str), a list of reasons, or a dict {rule id: reason}.
    """
    if marker is None:
        return {}
    if isinstance(marker, str) and marker.strip():
        return {"*": marker.strip()}
    if isinstance(marker, (list, tuple)) and marker and all(isinstance(r, str) and r.strip() for r in marker):
        return {"*": "; ".join(r.strip() for r in marker)}
    if isinstance(marker, dict) and marker and all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in marker.items()
    ):
        return {k: v.strip() for k, v in marker.items()}
    raise BadInput(
        "lint-accept",
        f"{where} is {marker!r}: not a reason, a list of reasons or a dict of rule -> reason",
        f"write for example {ACCEPT_ATTRIBUTE} = [\"why this is safe here\"]",
    )


@dataclass(frozen=True)
class LintSettings:
    threshold: int = DEFAULT_THRESHOLD
    accept: dict[str, dict[str, str]] = field(default_factory=dict)  # "app.name" -> reasons

    @classmethod
    def from_kit(cls, raw: dict[str, Any] | None) -> LintSettings:
        raw = raw or {}
        threshold = raw.get("LINT_SIZE_THRESHOLD")
        accepted = raw.get("LINT_ACCEPT") or {}
        if not isinstance(accepted, dict):
            raise BadInput("lint-accept", "MIGRATION_KIT['LINT_ACCEPT'] is not a dict",
                           "map 'app.migration_name' to a reason, a list of reasons or {rule: reason}")
        return cls(
            threshold=DEFAULT_THRESHOLD if threshold is None else parse_size(threshold),
            accept={label: accept_reasons(marker, f"MIGRATION_KIT['LINT_ACCEPT'][{label!r}]")
                    for label, marker in accepted.items()},
        )

    def reasons_for(self, label: str, marker: Any) -> dict[str, str]:
        """The migration's accepted rules: its class attribute, then the settings dict."""
        reasons = accept_reasons(marker, f"{label}.{ACCEPT_ATTRIBUTE}")
        return reasons | self.accept.get(label, {})


def accepted(reasons: dict[str, str], rule: str) -> str | None:
    return reasons.get(rule) or reasons.get("*")
