"""The statements' results turned into the report: counts, orphans, duplicates, losses, summary."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from migration_tools.core.config import KitSettings
from migration_tools.deploy.integrity import declared, losses, runner
from migration_tools.deploy.integrity.labels import split_db_table, summary_lines
from migration_tools.deploy.integrity.relations import Relation
from migration_tools.deploy.integrity.report import (
    Duplicates,
    IntegrityReport,
    ModelCount,
    Orphans,
    SummaryLine,
    Unchecked,
    UniqueViolation,
)
from migration_tools.deploy.integrity.schema import Table
from migration_tools.deploy.integrity.tasks import Checks, dup_key, rows_key


class Results:
    """Results by key; a failed statement is listed as not checked once, and reads as None."""

    def __init__(self, report: IntegrityReport, results: dict[Hashable, Any], checks: Checks) -> None:
        self.report, self.results, self.checks = report, results, checks
        self.said: set[Hashable] = set()

    def get(self, key: Hashable, what: str) -> Any:
        result = self.results.get(key)
        if isinstance(result, runner.Failure):
            if key not in self.said:
                self.said.add(key)
                self.report.unchecked.append(Unchecked(what, result.reason))
            return None
        return result

    def rows(self, table: Table) -> tuple[int, bool] | None:
        """(rows, estimated) of a table, None when its count failed or was not asked for."""
        if table.key in self.checks.estimated:
            return self.checks.estimated[table.key], True
        row = self.get(rows_key(table), f"count of {table.key}")
        return None if row is None else (int(row[0]), False)


def counts(found: Results, counted: list[Any]) -> None:
    for model in counted:
        table = found.checks.table(model._meta.db_table)
        rows = found.rows(table) if table is not None else None
        if table is not None and rows is not None:
            found.report.counts.append(ModelCount(declared.model_label(model), rows[0], model._meta.label,
                                                  table.key, rows[1]))


def orphans(found: Results, rels: list[Relation]) -> None:
    for r in rels:
        if r not in found.results:
            continue
        row = found.get(r, f"orphans of {r.model}.{r.field} ({r.db_table}.{r.column} -> {r.target})")
        if row is not None:
            child = found.checks.table(r.db_table)
            found.report.orphans.append(Orphans(
                r.model, r.field, int(row[0]), r.kind, child.key if child else r.db_table, r.column, r.target,
                tuple(row[1] or ()), r.pk_column or r.column, r.db_constraint))


def duplicates(found: Results, keys: list[declared.NaturalKey], settings: KitSettings) -> None:
    for key in keys:
        if dup_key(key) not in found.results:
            continue
        row = found.get(dup_key(key), f"duplicates of {key.label} ({', '.join(key.fields)})")
        if row is not None:
            loose = settings.normalized_keys.get(key.label, ())
            normalized = tuple(f for f in key.fields if f in loose)
            found.report.duplicates.append(
                Duplicates(key.label, key.fields, int(row[0]), normalized, tuple(row[1] or ())))
    for task in found.checks.uniques:
        _, label, unique = task
        row = found.get(task, f"unique {unique.name} of {label}")
        if row is not None and int(row[0]):
            found.report.unique_violations.append(
                UniqueViolation(label, unique.fields, unique.name, int(row[0]), tuple(row[1] or ())))


def rows_lost(found: Results, baseline: losses.Baseline, allowed: tuple[str, ...]) -> None:
    before = baseline.meta.row_counts
    now = {}
    for key, table in found.checks.found.user_tables.items():
        rows = found.rows(table) if key in before else None
        if rows is not None:
            now[key] = rows[0]
    found.report.losses = losses.losses(before, now, found.checks.estimated, allowed)
    missing = {split_db_table(t.table)[1] for t in found.report.missing_tables}
    for table in losses.gone(before, found.checks.found.user_tables, allowed):
        if table.partition(".")[2] not in missing:
            found.report.notes.append(f"{table} ({before[table]:,} rows in the backup) no longer exists")


def summary(report: IntegrityReport, every: list[Any], settings: KitSettings) -> None:
    """Per-model orphan lines: the critical models and those SUMMARY_LABELS names, when they take
    part in a checked relation (at either end); a model in none gets no line."""
    involved = {name for o in report.orphans for name in (o.model, o.target)}
    canonical = {m._meta.label.lower(): m for m in every}
    wanted: list[str] = []
    for name in [*settings.critical_models, *(k for k in settings.summary_labels if "." in k)]:
        model = canonical.get(name.lower())
        if model is not None and model._meta.label not in wanted and model._meta.label in involved:
            wanted.append(model._meta.label)
    configured = {canonical[k.lower()]._meta.label if k.lower() in canonical else k: v
                  for k, v in settings.summary_labels.items()}
    shown = [(label, str(canonical[label.lower()]._meta.verbose_name_plural)) for label in wanted]
    for label, text in summary_lines(shown, configured).items():
        rows = sum(o.rows for o in report.orphans if label in (o.model, o.target))
        report.summary.append(SummaryLine(text, rows, label))
