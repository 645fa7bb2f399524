"""A Django system check of the MIGRATION_KIT dict: models and fields it names must exist.

verify-data runs it itself (`run`), before any query. For `manage.py check` to run it too, a
project adds "migration_tools.deploy.integrity" to INSTALLED_APPS (its AppConfig imports this
module, which registers the check), or imports this module from one of its own AppConfig.ready().

ids: migration_kit.E001 unknown model, E002 unknown field, E003 a value of the wrong type,
W001 a NORMALIZED_KEYS field that DUPLICATE_KEYS does not use (it changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist

from migration_tools.core.errors import BadInput, prog_name
from migration_tools.deploy.integrity.labels import DUPLICATES_KEY, ORPHANS_KEY

TAG = "migration_kit"
MODEL_HINT = "name models as app_label.ModelName, as INSTALLED_APPS define them (python manage.py shell: " \
             "from django.apps import apps; apps.get_models())"
LISTS = ("CRITICAL_MODELS", "ALLOWED_DECREASES")
KEYS = ("DUPLICATE_KEYS", "NORMALIZED_KEYS")
NUMBERS = ("VERIFY_TIMEOUT", "ESTIMATE_ABOVE_ROWS")


def _error(text: str, hint: str, number: int) -> checks.Error:
    return checks.Error(text, hint=hint, obj="settings.MIGRATION_KIT", id=f"{TAG}.E{number:03d}")


def _model(label: str, where: str) -> tuple[Any, list[checks.CheckMessage]]:
    try:
        return apps.get_model(label), []
    except (LookupError, ValueError):
        text = f"MIGRATION_KIT['{where}'] names model '{label}', which no installed app defines"
        return None, [_error(text, MODEL_HINT, 1)]


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _positive(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        return float(value) > 0
    except ValueError:
        return False


def _keys(raw: Mapping[str, Any], key: str) -> list[checks.CheckMessage]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, Mapping) or not all(_is_list(v) for v in value.values()):
        return [_error(f"MIGRATION_KIT['{key}'] must map model labels to lists of field names",
                       'for example {"users.User": ["email"]}', 3)]
    found: list[checks.CheckMessage] = []
    for label, names in value.items():
        model, problems = _model(str(label), key)
        found += problems
        for name in names if model is not None else ():
            try:
                column = getattr(model._meta.get_field(name), "column", None)
            except FieldDoesNotExist:
                column = None
            if not column:
                fields = ", ".join(f.name for f in model._meta.concrete_fields)
                found.append(_error(f"MIGRATION_KIT['{key}'] names field '{name}' of {label}, which has no "
                                    "such column", f"use one of its fields: {fields}", 2))
    return found


def _normalized_unused(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    loose, keys = raw.get("NORMALIZED_KEYS"), raw.get("DUPLICATE_KEYS")
    if not isinstance(loose, Mapping) or not isinstance(keys, Mapping):
        return []
    return [
        checks.Warning(f"MIGRATION_KIT['NORMALIZED_KEYS'] names {label}.{name}, which DUPLICATE_KEYS does "
                       "not use", hint=f"add it to DUPLICATE_KEYS['{label}'] or remove it",
                       obj="settings.MIGRATION_KIT", id=f"{TAG}.W001")
        for label, names in loose.items() if _is_list(names)
        for name in names if name not in (keys.get(label) or ())
    ]


def _lists(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    for key in LISTS:
        value = raw.get(key)
        if value is not None and not _is_list(value):
            example = '["app_label.ModelName"]' if key == "CRITICAL_MODELS" else '["table" or "schema.table"]'
            text = f"MIGRATION_KIT['{key}'] must be a list of names"
            found.append(_error(text, f"for example {example}", 3))
    critical = raw.get("CRITICAL_MODELS")
    for label in critical if _is_list(critical) else ():
        found += _model(label, "CRITICAL_MODELS")[1]
    return found


def _labels(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    labels = raw.get("SUMMARY_LABELS")
    if labels is None:
        return []
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        example = f'{{"{ORPHANS_KEY}": "Orphan rows", "{DUPLICATES_KEY}": "Duplicates"}}'
        text = "MIGRATION_KIT['SUMMARY_LABELS'] must map names to texts"
        return [_error(text, f"for example {example}", 3)]
    found: list[checks.CheckMessage] = []
    for label in labels:
        if label not in (ORPHANS_KEY, DUPLICATES_KEY):
            found += _model(str(label), "SUMMARY_LABELS")[1]
    return found


@checks.register(TAG)
def check_migration_kit(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = getattr(settings, "MIGRATION_KIT", None)
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [_error("MIGRATION_KIT must be a dict", "see the kit's README, Configuration", 3)]
    found = _lists(raw)
    for key in KEYS:
        found += _keys(raw, key)
    found += _normalized_unused(raw) + _labels(raw)
    for key in NUMBERS:
        value = raw.get(key)
        if value is not None and not _positive(value):
            text = f"MIGRATION_KIT['{key}'] must be a positive number"
            found.append(_error(text, f'for example "{key}": 60', 3))
    return found


def run() -> list[checks.CheckMessage]:
    """Run the check as verify-data does; raises BadInput (exit 2) naming the first error, its id and hint."""
    messages = checks.run_checks(tags=[TAG])
    errors = [m for m in messages if m.is_serious()]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInput(
            "settings-check",
            f"{first.msg} [{first.id}]{more}",
            f"{first.hint}; then run {prog_name()} verify-data",
        )
    return [m for m in messages if not m.is_serious()]
