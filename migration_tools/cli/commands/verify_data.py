"""`verify-data`: record counts, orphaned rows, duplicates, schema health, rows lost since a backup."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from migration_tools.cli import output, progress
from migration_tools.cli.all_databases import all_databases_option
from migration_tools.cli.options import database_option, json_option
from migration_tools.core import runtime
from migration_tools.core.errors import OperationFailed, prog_name

if TYPE_CHECKING:
    from migration_tools.deploy.integrity.report import IntegrityReport


@click.command("verify-data")
@database_option
@all_databases_option("verify-data")
@json_option
@click.option("--against", metavar="FILE",
              help="Measure lost rows against this backup (default: the database's newest valid backup).")
@click.option("--allow-decrease", "allow_decrease", multiple=True, metavar="TABLE",
              help="A table whose rows may drop since the backup (repeatable; table or schema.table).")
@click.option("--strict", is_flag=True, help="Fail on potential duplicates of the configured keys too.")
@click.option("--jobs", type=click.IntRange(min=1, max=32), default=2, show_default=True, metavar="N",
              help="Parallel connections for checks of different tables.")
@click.option("--estimate", is_flag=True,
              help="Use the planner's row estimates for tables above MIGRATION_KIT['ESTIMATE_ABOVE_ROWS'].")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=None, metavar="SECONDS",
              help="Longest one query may run (default: MIGRATION_KIT['VERIFY_TIMEOUT'], else 60).")
def command(alias: str, as_json: bool, against: str | None, allow_decrease: tuple[str, ...], strict: bool,
            jobs: int, estimate: bool, timeout: float | None) -> None:
    """Check record counts, orphaned rows, duplicates, schema health and rows lost since the backup."""
    from migration_tools.deploy import preflight
    from migration_tools.deploy.integrity import settings_check
    from migration_tools.deploy.integrity.verify import VerifyOptions, verify_data_integrity

    kit = runtime.start("verify-data", alias)
    warnings = settings_check.run()
    preflight.run(kit.params, need_tools=False)
    with progress.watching(None, enabled=not as_json) as watch:
        options = VerifyOptions(
            jobs=jobs, timeout=timeout, estimate=estimate, backups_dir=kit.paths.backups, against=against,
            allow_decrease=allow_decrease, strict=strict, progress=watch.count if watch is not None else None,
        )
        report = verify_data_integrity(kit.params, kit.settings, kit.alias, options)
    report.notes[:0] = [f"{w.msg} [{w.id}]" for w in warnings]
    kit.log.info("verify-data ok=%s orphans=%d duplicates=%d problems=%s", report.ok, report.orphan_total,
                 report.duplicate_total, "; ".join(report.problems()) or "none")
    if as_json:
        output.line(json.dumps(report.as_dict(), indent=2))
    else:
        show(report)
    if not report.ok:
        raise OperationFailed(
            "verify-data-failed",
            f"data integrity check failed: {', '.join(report.problems())}",
            f"the lines above (or --json) name the tables; fix the data, then run {prog_name()} verify-data",
        )


def show(report: IntegrityReport) -> None:
    """The seed's lines (counts, the summary), then one line per finding, then the verdict."""
    from migration_tools.deploy.integrity import labels

    for count in report.counts:
        rows = f"{output.n(count.rows)} records"
        rows = f"~{rows} (estimated)" if count.estimated else rows
        output.mark("ok", f"{count.label}: {rows}")
    output.line("Data integrity check results:")
    for summary in report.summary:
        output.line(f"{summary.label}: {output.n(summary.rows)}")
    if not report.summary or report.uncovered_orphans:
        output.line(f"{report.orphans_label}: {output.n(report.orphan_total)}")
    output.line(f"{report.duplicates_label}: {output.n(report.duplicate_total)}")
    for orphan in report.orphans:
        if orphan.rows:
            name = labels.relation_text(orphan.model, orphan.field, orphan.kind, orphan.table, orphan.column,
                                        orphan.target)
            output.mark("fail", f"{name}: {output.n(orphan.rows)} row(s) with no parent")
            if orphan.examples:
                output.line(f"    {labels.example_text(orphan.example_column, orphan.examples)}")
    level = "fail" if report.strict else "warn"
    for dup in report.duplicates:
        if dup.extra_rows:
            loose = f", ignoring case and spaces in {', '.join(dup.normalized)}" if dup.normalized else ""
            output.mark(level, f"{dup.model} on ({', '.join(dup.fields)}{loose}): {output.n(dup.extra_rows)} "
                               "potential duplicate(s)")
    for v in report.unique_violations:
        output.mark("fail", f"{v.model} ({', '.join(v.fields)}): {output.n(v.extra_rows)} row(s) break "
                            f"unique {v.name}, which the database does not enforce")
    for table in report.missing_tables:
        output.mark("fail", f"table {table.table} of {table.model} is missing")
    for column in report.missing_columns:
        where = f"{column.table}.{column.column}"
        output.mark("fail", f"column {where} ({column.model}.{column.field}) is missing")
    for name in report.invalid_indexes:
        output.mark("fail", f"invalid index {name} (a failed concurrent build?): drop it and build it again")
    for constraint in report.not_valid:
        what = f"{constraint.kind} constraint {constraint.name}"
        output.mark("fail", f"{what} on {constraint.table} is NOT VALID")
    for loss in report.losses:
        level = "fail" if loss.unexpected else "warn"
        why = " (allowed)" if loss.allowed else " (estimated counts)" if loss.estimated else ""
        output.mark(level, f"{loss.table}: {output.n(loss.lost)} row(s) fewer than in the backup "
                           f"({output.n(loss.before)} -> {output.n(loss.now)}){why}")
    for unchecked in report.unchecked:
        output.mark("fail", f"not checked: {unchecked.what}: {unchecked.reason}")
    for note in report.notes:
        output.mark("warn", note)
    output.line(_scope(report))
    output.verdict(report.ok, "data integrity verified" if report.ok else "data integrity check failed")


def _scope(report: IntegrityReport) -> str:
    relations = len(report.orphans)
    against = f"; rows compared with {report.backup}" if report.backup else ""
    estimated = sum(1 for c in report.counts if c.estimated)
    guess = f"; {estimated} count(s) estimated" if estimated else ""
    return f"Checked {report.tables_checked} table(s), {relations} relation(s){against}{guess}"
