"""`check-migrations`: the pending plan per app, and the lint of its SQL (lock, table size, safe
alternative per statement); fails on missing migrations, conflicts, or unsafe statements."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from migration_tools.cli import output
from migration_tools.cli.all_databases import all_databases_option
from migration_tools.cli.options import database_option, json_option
from migration_tools.core import runtime

if TYPE_CHECKING:
    from migration_tools.core.runtime import Kit
    from migration_tools.deploy.plan import Release
    from migration_tools.lint.analyse import LintReport
    from migration_tools.lint.findings import Finding

MARKS = {"fail": output.FAIL, "accepted": output.OK, "warn": output.WARN}


@click.command("check-migrations")
@database_option
@all_databases_option("check-migrations")
@click.option("--commit-each", is_flag=True,
              help="Weigh locks as migrate --commit-each holds them: each migration in its own "
              "transaction (default: the whole plan in one, as migrate runs it).")
@json_option
@click.option("--offline", is_flag=True,
              help="Read no database: every migration counts as pending, table sizes are unknown, "
              "and each migration is judged as if the ones before it were released.")
@click.option("--allow-unsafe", is_flag=True,
              help="Report statements that break the running code or block a large table, but do not fail.")
@click.option("--no-lint", is_flag=True, help="Only the plan, missing migrations and conflicts: no SQL lint.")
def command(alias: str, commit_each: bool, as_json: bool, offline: bool, allow_unsafe: bool,
            no_lint: bool) -> None:
    """List pending migrations in plan order; lint their SQL (lock, table size, safe alternative).

    Fails on missing migrations, conflicts, or statements that break the running code or block
    reads or writes while scanning a table above MIGRATION_KIT's LINT_SIZE_THRESHOLD (default
    10MB), unless the migration accepts them (migration_kit_accept = ["reason"] on its class, or
    MIGRATION_KIT's LINT_ACCEPT) or --allow-unsafe is given.
    """
    from migration_tools.deploy import checks, plan, preflight

    kit = runtime.start("check-migrations", alias)
    if offline:
        release = checks.prepare_offline(alias)
    else:
        preflight.run(kit.params, need_tools=False)
        release = plan.prepare(alias)
    result = checks.run(release)
    report = None if no_lint or not release.pending else _lint(kit, release, offline, commit_each)
    if as_json:
        output.line(json.dumps({"pending": [f"{a}.{n}" for a, n in result.pending],
                                "missing": result.missing, "offline": offline,
                                "lint": None if report is None else _as_json(report)}, indent=2))
    else:
        _show_plan(result.pending)
        if report is not None:
            _show_lint(report)
    if result.missing:
        if not as_json:
            for app, ops in sorted(result.missing.items()):
                output.mark("fail", f"{app}: model changes without a migration: {'; '.join(ops)}")
        raise checks.missing_error(result.missing)
    kit.log.info("pending=%d", len(result.pending))
    failing = report.failing if report is not None else []
    if failing and not allow_unsafe:
        kit.log.warning("lint: %d unsafe statement(s)", len(failing))
        from migration_tools.lint.findings import unsafe_error

        raise unsafe_error(failing, "check-migrations")
    if as_json:
        return
    if not result.pending:
        output.verdict(True, "no pending migrations: the database is up to date")
        return
    allowed = f"; {len(failing)} unsafe finding(s) allowed by --allow-unsafe" if failing else ""
    output.verdict(True, f"{len(result.pending)} migration(s) pending, no conflicts{allowed}")


def _lint(kit: Kit, release: Release, offline: bool, commit_each: bool) -> LintReport:
    from django.conf import settings
    from django.db import connections

    from migration_tools.deploy import apply
    from migration_tools.lint.run import lint_plan
    from migration_tools.lint.settings import LintSettings

    one_transaction = not commit_each and apply.can_run_in_one_transaction(release)
    return lint_plan(release.executor, release.pending, connections[kit.alias],
                     LintSettings.from_kit(getattr(settings, "MIGRATION_KIT", None)),
                     params=None if offline else kit.params, one_transaction=one_transaction)


def _show_plan(pending: list[tuple[str, str]]) -> None:
    if not pending:
        return
    output.line(f"Pending migrations ({len(pending)}), in plan order:")
    for index, (app, name) in enumerate(pending, 1):
        output.line(f"  {index}. {app}.{name}")
    per_app: dict[str, int] = {}
    for app, _name in pending:
        per_app[app] = per_app.get(app, 0) + 1
    output.line("Per app: " + ", ".join(f"{app} {count}" for app, count in sorted(per_app.items())))


def server_version(number: int | None) -> str:
    if number is None:
        return "offline: server version and table sizes unknown"
    return f"PostgreSQL {number // 10000}.{number % 10000}"


def _show_lint(report: LintReport) -> None:
    transaction = ("the whole plan in one transaction" if report.one_transaction
                   else "each migration in its own transaction")
    counts = {level: sum(1 for f in report.findings if f.level == level) for level in MARKS}
    output.line("")
    output.line(f"Lint of the plan's SQL ({server_version(report.version)}; {transaction}; "
                f"fails above {output.human_size(report.threshold)}):")
    scope = "this plan" if report.online else "their own migration"
    skipped = (f"; {len(report.skipped)} migration(s) only create or change tables new in {scope}: "
               "nothing the application would notice, not collected" if report.skipped else "")
    output.line(f"  {len(report.statements)} statement(s){skipped}")
    output.line(f"  {len(report.findings)} finding(s): {counts['fail']} failing, "
                f"{counts['accepted']} accepted, {counts['warn']} warning(s)")
    if not report.findings:
        return
    rows = [("", "migration", "statement", "lock", "blocks", "table", "rows, size")]
    for f in report.findings:
        rows.append((MARKS[f.level], f.migration, f.short or f.operation, f.lock or "-",
                     ", ".join(f.blocks) or "-", f.table or "-", f.size or "-"))
    widths = [min(max(len(r[i]) for r in rows), cap) for i, cap in enumerate((1, 40, 60, 22, 20, 36, 32))]
    for index, row in enumerate(rows):
        cells = [c if len(c) <= widths[i] else c[: widths[i] - 1] + "…" for i, c in enumerate(row)]
        output.line("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip())
        if index:
            _details(report.findings[index - 1])


def _details(finding: Finding) -> None:
    work = {"scan": "; scans the table under the lock", "rewrite": "; rewrites the table under the lock"}
    output.line(f"      {finding.title}{work.get(finding.work, '')}: {finding.risk}")
    if finding.why:
        output.line(f"      {'FAILS: ' if finding.level == 'fail' else ''}{finding.why}")
    output.line(f"      instead: {finding.alternative}")


def _as_json(report: LintReport) -> dict[str, Any]:
    return {
        "server_version_num": report.version,
        "online": report.online,
        "one_transaction": report.one_transaction,
        "threshold_bytes": report.threshold,
        "skipped": report.skipped,
        "statements": [{"migration": s.migration.label, "operation": s.operation, "sql": s.text,
                        "locks": [{"table": e.table, "lock": e.lock, "work": e.work}
                                  for e in s.classified.effects]}
                       for s in report.statements],
        "findings": [f.as_json() for f in report.findings],
        "failing": len(report.failing),
    }
