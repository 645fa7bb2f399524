"""`verify-data`: record counts, orphaned rows, potential duplicates, invalid indexes."""

from __future__ import annotations

import json

import click

from migration_tools.cli import output
from migration_tools.cli.options import database_option, json_option
from migration_tools.core import runtime
from migration_tools.core.errors import OperationFailed, prog_name


@click.command("verify-data")
@database_option
@json_option
def command(alias: str, as_json: bool) -> None:
    """Check record counts, orphaned rows, potential duplicates and invalid indexes."""
    from migration_tools.deploy import preflight, verify_data

    kit = runtime.start("verify-data", alias)
    preflight.run(kit.params, need_tools=False)
    report = verify_data.verify_data_integrity(kit.params, kit.settings, kit.alias)
    kit.log.info("verify-data ok=%s orphans=%d duplicates=%d", report.ok, report.orphan_total,
                 report.duplicate_total)
    if as_json:
        output.line(json.dumps(report.as_dict(), indent=2))
    else:
        for count in report.counts:
            output.mark("ok", f"{count.label}: {output.n(count.rows)} records")
        output.line("Data integrity check results:")
        orphans = verify_data.orphans_by_model(report)
        for label, plural in report.plural_names.items():
            output.line(f"Orphan {plural}: {output.n(orphans.get(label, 0))}")
        for orphan in report.orphans:
            if orphan.rows:
                output.mark("fail", f"{orphan.model}.{orphan.field}: {output.n(orphan.rows)} row(s) "
                                    "with no parent")
        output.line(f"Potential duplicates: {output.n(report.duplicate_total)}")
        for dup in report.duplicates:
            if dup.extra_rows:
                output.line(f"  {dup.model} on ({', '.join(dup.fields)}): {output.n(dup.extra_rows)}")
        output.line(f"Invalid indexes: {', '.join(report.invalid_indexes) or 'none'}")
        output.verdict(report.ok, "data integrity verified" if report.ok else "data integrity check failed")
    if not report.ok:
        raise OperationFailed(
            "verify-data-failed",
            f"data integrity check failed: {report.orphan_total:,} orphaned row(s), "
            f"{len(report.invalid_indexes)} invalid index(es)",
            f"the lines above (or --json) name the tables; fix the data, then run {prog_name()} verify-data",
        )
