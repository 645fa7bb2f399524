"""verify-data: every check on the models of the applied migrations' state, as one report.

Catalog reads first, on one connection (which tables and columns exist, unique indexes, invalid
indexes, NOT VALID constraints); then the data checks on `jobs` connections, skipping what a
missing table or column would make fail; then, for generic relations, one check per content type
their rows use.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps as real_apps
from django.db.migrations.state import StateApps

from migration_tools.core.config import KitSettings
from migration_tools.core.djangoenv import ConnParams
from migration_tools.deploy import plan
from migration_tools.deploy.integrity import collect, declared, losses, relations, runner, schema
from migration_tools.deploy.integrity.labels import DUPLICATES_KEY, ORPHANS_KEY, total_label
from migration_tools.deploy.integrity.relations import Relation
from migration_tools.deploy.integrity.report import IntegrityReport, Unchecked
from migration_tools.deploy.integrity.tasks import Checks, Found
from migration_tools.pg import catalog, db

CATALOG_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class VerifyOptions:
    jobs: int = 2
    timeout: float | None = None  # seconds per statement; None: the settings' VERIFY_TIMEOUT
    estimate: bool = False  # planner estimates for tables above the settings' ESTIMATE_ABOVE_ROWS
    backups_dir: Path | None = None  # compare row counts with the newest valid backup in it
    against: str | None = None  # ... or with this backup
    allow_decrease: tuple[str, ...] = ()
    strict: bool = False  # configured-key duplicates fail the check too
    progress: Callable[[int, int], None] | None = None  # (tables checked, tables) as the checks go
    gentle: bool = False  # one connection, no parallel workers: the CPU stays with the application
    problems_only: bool = False  # a baseline for new_problems: no counts, no configured-key duplicates


def applied_state_apps(alias: str) -> StateApps:
    """Models as the applied migrations left them: the columns that exist in the database now."""
    return plan.executor(alias)._create_project_state(with_applied_migrations=True).apps


def read_catalog(
    params: ConnParams, db_tables: set[str], report: IntegrityReport, every_table: bool
) -> Found:
    with db.connect(params, purpose=runner.PURPOSE) as conn, db.statement_timeout(conn, CATALOG_TIMEOUT_MS):
        tables = schema.resolve(conn, db_tables)
        report.invalid_indexes = catalog.invalid_indexes(conn)
        report.not_valid = schema.not_valid_constraints(conn)
        uniques = schema.unique_indexes(conn, [t.oid for t in tables.values() if t is not None])
        return Found(tables, uniques, schema.user_tables(conn) if every_table else {})


def verify_data_integrity(
    params: ConnParams, settings: KitSettings, alias: str, options: VerifyOptions | None = None
) -> IntegrityReport:
    """Every check; a statement that times out or fails is reported as not checked, never as clean."""
    opts = options or VerifyOptions()
    timeout_s = opts.timeout or settings.verify_timeout
    report = IntegrityReport(
        strict=opts.strict, orphans_label=total_label(settings.summary_labels, ORPHANS_KEY),
        duplicates_label=total_label(settings.summary_labels, DUPLICATES_KEY),
    )
    state_apps = applied_state_apps(alias)
    every = relations.checked_models(state_apps)
    counted, notes = declared.counted_models(settings, state_apps, every)
    keys, key_notes = declared.natural_keys(settings, state_apps)
    if opts.problems_only:  # what new_problems compares needs neither (each costs a scan of its table)
        counted, keys = [], []
    report.notes += notes + key_notes
    rels = [r for m in every for r in relations.model_relations(m)]
    specs = relations.generic_specs(state_apps, real_apps)
    baseline = _baseline(opts, params, report)
    labelled = [(m._meta.label, m) for m in every] + [
        (f"{m._meta.label}.{name}", through)
        for m in every for name, through in relations.auto_through_models(m)
    ]
    db_tables = {m._meta.db_table for _, m in labelled} | {m._meta.db_table for m in counted}
    db_tables |= {r.target_table for r in rels} | {s.ct_table for s in specs}
    found = read_catalog(params, db_tables, report, baseline is not None)
    report.missing_tables, report.missing_columns = schema.missing(labelled, found.tables)
    report.tables_checked = sum(1 for t in found.tables.values() if t is not None)

    checks = Checks(found, settings.estimate_above_rows if opts.estimate else None)
    for model in counted:
        table = checks.table(model._meta.db_table)
        if table is not None:
            checks.count(table)
    for r in rels:
        checks.relation(r)
    for key in keys:
        checks.natural_key(key)
    for model in every:
        checks.unenforced_uniques(model)
        report.notes += checks.conditional_uniques(model)
    for spec in specs:
        checks.content_types(spec)
    if baseline is not None:
        for key in baseline.meta.row_counts:
            if key in found.user_tables:
                checks.count(found.user_tables[key])
    results = runner.run(params, checks.take(), jobs=1 if opts.gentle else opts.jobs, timeout_s=timeout_s,
                         progress=opts.progress, gentle=opts.gentle)
    generic = _generic_relations(specs, results, state_apps, report)
    for r in generic:
        checks.relation(r)
    results |= runner.run(params, checks.take(), jobs=1 if opts.gentle else opts.jobs, timeout_s=timeout_s,
                          progress=opts.progress, gentle=opts.gentle)

    found_results = collect.Results(report, results, checks)
    collect.counts(found_results, counted)
    collect.orphans(found_results, rels + generic)
    collect.duplicates(found_results, keys, settings)
    if baseline is not None:
        collect.rows_lost(found_results, baseline, (*settings.allowed_decreases, *opts.allow_decrease))
    collect.summary(report, every, settings)
    return report


def _baseline(opts: VerifyOptions, params: ConnParams, report: IntegrityReport) -> losses.Baseline | None:
    """The backup to measure lost rows against: `--against`, else the newest valid one, else none."""
    if opts.backups_dir is None and opts.against is None:
        return None
    backups_dir = opts.backups_dir or Path.cwd()
    if opts.against is not None:
        chosen = losses.named(opts.against, backups_dir, params.dbname)
    else:
        found = losses.newest_valid(backups_dir, params.dbname)
        if found is None:
            report.notes.append(f"no valid backup of {params.dbname} in {backups_dir}: lost rows not checked")
            return None
        chosen = found
    report.backup = chosen.name
    if chosen.note:
        report.notes.append(chosen.note)
    return chosen


def _generic_relations(
    specs: list[relations.GenericSpec], results: dict[Hashable, Any], state_apps: StateApps,
    report: IntegrityReport,
) -> list[Relation]:
    """One relation per content type each generic foreign key's rows use."""
    found = []
    for spec in specs:
        used = results.get(spec)
        if isinstance(used, runner.Failure):
            report.unchecked.append(Unchecked(f"{spec.model}.{spec.field} (content types used)", used.reason))
            continue
        for ct_id, app_label, model_name in used or ():
            try:
                target = state_apps.get_model(str(app_label), str(model_name))
            except LookupError:
                target = None
            found.append(relations.generic_relation(spec, int(ct_id), target, f"{app_label}.{model_name}"))
    return found
