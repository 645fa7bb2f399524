"""`full-deploy`: pre-flight, check-migrations, backup, migrate, verify-data, `check --deploy`.

One deploy lock around the whole pipeline. The first failing step stops it; once migrations
were applied, a later failure undoes them the way a failed `migrate` does.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import SystemCheckError

from migration_tools.core.errors import KitError, OperationFailed, RolledBack, prog_name
from migration_tools.core.runtime import Kit
from migration_tools.deploy import checks, migrate, plan, preflight
from migration_tools.deploy.apply import ProgressFn
from migration_tools.pg import deploy_lock

Say = Callable[[str], None]


@dataclass
class StepResult:
    name: str
    outcome: str = "skipped"  # ok | failed | skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DeployReport:
    steps: list[StepResult] = field(default_factory=list)
    backup: Path | None = None
    report: Path | None = None
    verdict: str = ""
    ok: bool = False


STEPS = ("pre-flight", "check-migrations", "backup", "migrate", "verify-data", "check --deploy")


def _run_step(report: DeployReport, name: str, action: Callable[[], str]) -> None:
    step = next(s for s in report.steps if s.name == name)
    started = time.monotonic()
    try:
        step.detail = action()
        step.outcome = "ok"
    except BaseException as exc:
        step.outcome = "failed"
        step.detail = exc.message if isinstance(exc, KitError) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        step.seconds = time.monotonic() - started


def deploy_checks() -> str:
    """Django's deployment checks; raises OperationFailed on errors, returns the warnings count."""
    out = io.StringIO()
    try:
        call_command("check", deploy=True, stdout=out, stderr=out)
    except SystemCheckError as exc:
        first = str(exc).strip().splitlines()
        raise OperationFailed(
            "deploy-check",
            f"Django's deployment checks failed: {first[1] if len(first) > 1 else first[0]}",
            "fix the settings, then run python manage.py check --deploy",
        ) from exc
    text = out.getvalue()
    warnings = text.count("(security.W") + text.count("(W")
    return f"{warnings} warning(s)" if warnings else "no issues"


def new_report() -> DeployReport:
    return DeployReport(steps=[StepResult(name) for name in STEPS])


def full_deploy(
    kit: Kit, options: migrate.MigrateOptions, say: Say, progress: ProgressFn, report: DeployReport
) -> DeployReport:
    """Run the pipeline, filling `report` as it goes; raises when a step fails (the caller prints it)."""
    applied: list[tuple[str, str]] = []
    before: set[tuple[str, str]] = set()
    state: dict[str, Any] = {}

    def check() -> str:
        result = checks.run(kit.alias)
        if result.missing:
            raise checks.missing_error(result.missing)
        state["pending"] = len(result.pending)
        return f"{len(result.pending)} pending"

    def backup() -> str:
        from migration_tools.backups.create import create_backup

        made = create_backup(kit, "pre-migrate", deep=options.deep_backup)
        report.backup = made.dump
        return f"{made.dump.name} ({made.metadata.size_bytes:,} bytes)"

    def migrate() -> str:
        outcome = migrate.run(kit, options, say, progress, backup_path=report.backup)
        applied.extend((s.app, s.name) for s in outcome.applied)
        report.report = outcome.report
        return f"{len(outcome.applied)} applied"

    def verify_data() -> str:
        integrity = verify_data.verify_data_integrity(kit.params, kit.settings, kit.alias)
        if not integrity.ok:
            raise OperationFailed(
                "verify-data",
                f"data integrity check failed: {integrity.orphan_total} orphaned row(s), "
                f"{len(integrity.invalid_indexes)} invalid index(es)",
                f"run {prog_name()} verify-data for the details",
            )
        return f"{len(integrity.counts)} models, 0 orphans, {integrity.duplicate_total} potential duplicates"

    try:
        with deploy_lock.hold(kit.params, "full-deploy"):
            _run_step(report, "pre-flight", lambda: preflight.run(kit.params).server_version and "ok")
            _run_step(report, "check-migrations", check)
            before = plan.applied_set(kit.alias)
            if state["pending"]:
                _run_step(report, "backup", backup)
                _run_step(report, "migrate", migrate)
            try:
                _run_step(report, "verify-data", verify_data)
                _run_step(report, "check --deploy", deploy_checks)
            except Exception as exc:
                if not applied:
                    raise
                undone = migrate.undo_run(kit, applied, before, report.backup, say, "full-deploy")
                if undone != "rolled-back":
                    raise OperationFailed(
                        "rollback-failed",
                        f"{exc}; UNDOING THE MIGRATIONS FAILED: the database may be half-migrated",
                        "restore the pre-migrate backup now: python rollback_manager.py rollback "
                        f"{report.backup.name if report.backup else '<backup>'}",
                    ) from exc
                raise RolledBack(
                    "deploy-rolled-back",
                    f"full-deploy failed after migrating ({exc}); this run's migrations were undone",
                    f"fix the cause, then run {prog_name()} full-deploy again",
                ) from exc
    except Exception:
        report.verdict = "FAILED"
        raise
    report.ok = True
    report.verdict = "deployed" if applied else "nothing to migrate; checks passed"
    return report
