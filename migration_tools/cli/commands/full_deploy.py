"""`full-deploy`: pre-flight, check-migrations, backup, migrate, verify-data, check --deploy, summary."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from migration_tools.cli import output, progress, reporting
from migration_tools.cli.all_databases import all_databases_option
from migration_tools.cli.migrating import migrate_options
from migration_tools.cli.options import commit_each_option, database_option, monitor_options
from migration_tools.core import runtime

if TYPE_CHECKING:
    from migration_tools.deploy.pipeline import DeployReport


@click.command("full-deploy")
@database_option
@all_databases_option("full-deploy")
@monitor_options
@commit_each_option
def command(alias: str, monitor: bool, interval: float, commit_each: bool) -> None:
    """Pre-flight, check-migrations, backup, migrate, verify-data, check --deploy, then a summary."""
    from migration_tools.deploy import pipeline

    kit = runtime.start("full-deploy", alias)
    options = migrate_options(monitor, interval, backup=False, commit_each=commit_each)
    report = pipeline.DeployReport()
    started = time.monotonic()
    sessions: list[reporting.Session] = []
    try:
        reporting_on = reporting.session(kit, "full-deploy", enabled=monitor, interval=interval,
                                         announce=False)
        with reporting_on as session, progress.watching(kit.params, files=kit.paths.backups):
            sessions.append(session)
            session.section("backup", lambda: reporting.backup_section(report.backup))
            session.section("verify_data", lambda: reporting.verify_section(report.integrity))
            pipeline.full_deploy(kit, options, output.show, report, monitor=session.monitor)
            session.verdict = report.verdict
    finally:
        if sessions and sessions[0].monitor is not None:
            report.report = sessions[0].monitor.report_path
            report.html = sessions[0].monitor.html_path
        print_summary(kit, report, time.monotonic() - started)


def print_summary(kit: runtime.Kit, report: DeployReport, seconds: float) -> None:
    output.line("")
    output.line("Deployment summary")
    for step in report.steps:
        mark = {"ok": "ok", "failed": "fail", "skipped": "warn"}[step.outcome]
        detail = f" - {step.detail}" if step.detail else ""
        output.mark(mark, f"{step.name:<17} {step.outcome:<8} {step.seconds:6.2f}s{detail}")
        kit.log.info("full-deploy step %s %s %.2fs %s", step.name, step.outcome, step.seconds, step.detail)
    output.line(f"Backup: {report.backup or 'none'}")
    output.line(f"Performance report: {report.report or 'none (run with --monitor)'}")
    if report.report is not None:
        output.line(f"HTML report: {report.html or 'not written (see the warnings)'}")
    output.line(f"Total: {seconds:.1f}s")
    if report.ok:
        output.verdict(True, report.verdict)
