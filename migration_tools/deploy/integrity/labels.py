"""How verify-data names things: pure functions over strings, tested without a database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

ORPHANS_KEY = "orphans"
DUPLICATES_KEY = "duplicates"
DEFAULT_ORPHANS_LABEL = "Orphan records"
DEFAULT_DUPLICATES_LABEL = "Potential duplicates"
EXAMPLES = 5


def count_label(module: str, class_name: str) -> str:
    """`<module>.<ClassName>`, the model class's real home: `medications.models.Medication`."""
    return f"{module}.{class_name}"


def fallback_module(app_module: str) -> str:
    """Where a model lives when only the migrations still know it: the app's models module."""
    return f"{app_module}.models"


def split_db_table(db_table: str) -> tuple[str, str]:
    """A model's db_table as Django quotes it, split into (schema, table); '' when unqualified.

    `'archive"."record'` and `'"archive"."record"'` name archive.record; `'Record'` has no schema.
    """
    text = db_table[1:-1] if db_table.startswith('"') and db_table.endswith('"') else db_table
    schema, sep, table = text.partition('"."')
    return (schema, table) if sep else ("", text)


def quoted_db_table(db_table: str) -> str:
    """The table as Django's PostgreSQL backend writes it in SQL (what to_regclass resolves)."""
    return db_table if db_table.startswith('"') and db_table.endswith('"') else f'"{db_table}"'


def summary_lines(
    models: Sequence[tuple[str, str]], configured: dict[str, str]
) -> dict[str, str]:
    """Summary label per model: (app.Model, verbose plural) -> 'Orphan <plural>' or the configured one.

    Two models whose labels would read the same get their app in brackets:
    `Orphan notes (places)`, `Orphan notes (catalogue)`.
    """
    labels = {label: configured.get(label) or f"Orphan {plural}" for label, plural in models}
    seen: dict[str, int] = {}
    for text in labels.values():
        seen[text] = seen.get(text, 0) + 1
    return {
        label: f"{text} ({label.partition('.')[0]})" if seen[text] > 1 else text
        for label, text in labels.items()
    }


def total_label(configured: dict[str, str], key: str) -> str:
    default = DEFAULT_ORPHANS_LABEL if key == ORPHANS_KEY else DEFAULT_DUPLICATES_LABEL
    return configured.get(key) or default


def example_text(column: str, keys: Sequence[Any]) -> str:
    """`e.g. id 3, 7, 9` (at most five keys), '' without any."""
    shown = [str(k) for k in list(keys)[:EXAMPLES]]
    return f"e.g. {column} {', '.join(shown)}" if shown else ""


def is_allowed(table_key: str, allowed: Iterable[str]) -> bool:
    """Is 'schema.table' named in the allowed list, as 'schema.table' or as the bare table name?"""
    table = table_key.partition(".")[2]
    return any(name in (table_key, table) for name in allowed)


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def relation_text(model: str, field: str, kind: str, table: str, column: str, target: str) -> str:
    """How a relation reads in a detail line.

    A foreign key or one-to-one reads as `app.Model.field`; a many-to-many names the side of its
    through table; a generic relation names the content type's model.
    """
    if kind == "many-to-many":
        return f"{model}.{field} ({table}.{column} -> {target})"
    if kind == "generic":
        return f"{model}.{field} -> {target}"
    return f"{model}.{field}"
