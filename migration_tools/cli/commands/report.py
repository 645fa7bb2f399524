"""`report [FILE]`: render a run's HTML page again from its JSON report, or list the reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from migration_tools.cli import output
from migration_tools.cli.options import database_option
from migration_tools.core import runtime
from migration_tools.core.errors import BadInput, OperationFailed, prog_name


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(
            "report-unreadable",
            f"cannot read {path} as a JSON report: {exc}; nothing was written",
            f"run {prog_name()} report to list the reports",
        ) from exc
    if not isinstance(raw, dict) or "duration_seconds" not in raw:
        raise BadInput(
            "report-unreadable",
            f"{path} is not a report of the kit's monitor; nothing was written",
            f"run {prog_name()} report to list the reports",
        )
    return raw


def _resolve(name: str, directory: Path) -> Path:
    for candidate in (Path(name), directory / name, directory / f"{name}.json"):
        if candidate.is_file():
            return candidate.with_suffix(".json") if candidate.suffix == ".html" else candidate
    raise BadInput(
        "report-not-found",
        f"no report {name} (looked in {directory}); nothing was written",
        f"run {prog_name()} report to list the reports",
    )


def listing(directory: Path) -> list[tuple[Path, dict[str, Any] | None]]:
    """The JSON reports in `directory`, newest first (by name: the stamp is the finish time)."""
    found = []
    for path in sorted(directory.glob("report_*.json"), reverse=True):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            found.append((path, raw if isinstance(raw, dict) else None))
        except (OSError, UnicodeDecodeError, ValueError):
            found.append((path, None))
    return found


@click.command("report")
@click.argument("file", required=False)
@database_option
def command(file: str | None, alias: str) -> None:
    """Write FILE's HTML page again (migration_monitoring/report_<ts>.html); without FILE, list the reports.

    FILE is a JSON report's path or its name in migration_monitoring/. The list shows each
    report newest first with its command, database, verdict and exit code.
    """
    kit = runtime.start("report", alias, log_name="rollback", apps=False)
    directory = kit.paths.monitoring
    if file is None:
        found = listing(directory) if directory.is_dir() else []
        if not found:
            output.line(
                f"No reports in {directory} (migrate --monitor, full-deploy --monitor and rollbacks "
                "write them)"
            )
            return
        output.line(f"{'report':<32} {'command':<18} {'database':<20} {'exit':>4}  verdict")
        for path, raw in found:
            if raw is None:
                output.line(f"{path.name:<32} unreadable")
                continue
            from migration_tools.report.page import verdict_of

            run = raw.get("run") or {}
            code = run.get("exit_code")
            output.line(
                f"{path.name:<32} {run.get('command') or '?'!s:<18} "
                f"{run.get('database') or '?'!s:<20} {'?' if code is None else code:>4}  "
                f"{verdict_of(raw)[0]}"
            )
        return
    path = _resolve(file, directory)
    report = _load(path)
    from migration_tools.deploy import run_report

    try:
        html = run_report.write_html(path, report)
    except OSError as exc:
        raise OperationFailed(
            "report-write",
            f"cannot write the page beside {path}: {exc}",
            "check the directory's permissions and free space, then run it again",
        ) from exc
    kit.log.info("report rendered %s", html)
    output.line(f"HTML report: {html}")
    output.verdict(True, f"rendered {html.name} from {path.name}")
