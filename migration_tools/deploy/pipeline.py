"""`full-deploy`: pre-flight, check-migrations, backup, migrate, verify-data, Django's deploy checks.

Read top to bottom, as Django's own `migrate` reads: each step is a function that returns its
result; `_step` times it and records its line of the summary. One deploy lock around the whole
pipeline; the first failing step stops it; once migrations were applied, a later failure undoes
them the way a failed `migrate` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings as django_settings

from migration_tools.core import signals, timeline
from migration_tools.core.errors import KitError, OperationFailed, prog_name
from migration_tools.core.events import Event, Report
from migration_tools.core.runtime import Kit
from migration_tools.deploy import apply, checks, migrate, plan, preflight, undo
from migration_tools.deploy.health import HealthSettings, HealthWatch
from migration_tools.deploy.integrity import report as integrity
from migration_tools.deploy.integrity.verify import VerifyOptions, verify_data_integrity
from migration_tools.deploy.migrate import MigrateOptions, MigrateOutcome
from migration_tools.pg import deploy_lock

T = TypeVar("T")
STEPS = ("pre-flight", "check-migrations", "backup", "migrate", "verify-data", "check --deploy")


@dataclass
class StepResult:
    name: str
    outcome: str = "skipped"  # ok | failed | skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DeployReport:
    steps: list[StepResult] = field(default_factory=lambda: [StepResult(name) for name in STEPS])
    backup: Path | None = None
    report: Path | None = None
    html: Path | None = None  # the report's page beside it
    verdict: str = ""
    ok: bool = False
    integrity: integrity.IntegrityReport | None = None  # verify-data's results after migrating


def full_deploy(kit: Kit, options: MigrateOptions, report: Report, summary: DeployReport,
                monitor: Any = None) -> DeployReport:
    """Run the pipeline, filling `summary` as it goes; raises when a step fails (the caller prints it).
    With MIGRATION_KIT's HEALTH_CHECK_URL, the application must be healthy before, is watched while
    migrating and is checked after: a failure then undoes the run like a failed verify-data."""
    watch: HealthWatch | None = None
    try:
        with deploy_lock.hold(kit.params, "full-deploy"):
            _step(summary, "pre-flight", lambda: preflight.run(kit.params),
                  lambda checked: f"PostgreSQL {checked.server_version}"
                  + (f"; warning: {checked.server_warning}" if checked.server_warning else ""))
            release = _step(summary, "check-migrations", lambda: check_release(kit),
                            lambda found: f"{len(found.pending)} pending")
            baseline = verify_data_integrity(kit.params, kit.settings, kit.alias)
            outcome = MigrateOutcome()
            health = HealthSettings.from_kit(getattr(django_settings, "MIGRATION_KIT", None))
            watch = health.watch() if release.pending else None
            if watch is not None:
                health.require_healthy("full-deploy")
                watch.start()
                if monitor is not None:
                    monitor.add_section("health", watch.section)
            if release.pending:
                summary.backup = _step(
                    summary, "backup", lambda: migrate.take_backup(kit, options, report), _name
                )
                try:
                    _step(
                        summary, "migrate",
                        lambda: migrate.run(kit, options, report, release=release,
                                            backup_path=summary.backup, outcome=outcome, monitor=monitor),
                        lambda o: f"{len(o.applied)} applied",
                    )
                finally:
                    summary.report = outcome.report
            try:
                if watch is not None:
                    watch.stop()
                    with timeline.step("health after"):
                        watch.check_after()
                _step(summary, "verify-data", lambda: verify(kit, baseline, summary), lambda i: i)
                _step(summary, "check --deploy", deploy_checks, lambda w: w)
            except (Exception, KeyboardInterrupt) as exc:
                if outcome.applied:
                    with signals.shielded(lambda text: report(Event("warn", text))):
                        undo_after(kit, release, outcome, summary, report, exc)
                raise
    except Exception:
        summary.verdict = "FAILED"
        raise
    finally:
        if watch is not None:
            watch.stop()
    summary.ok = True
    summary.verdict = "deployed" if outcome.applied else "nothing to migrate; checks passed"
    return summary


def _step(summary: DeployReport, name: str, action: Callable[[], T], describe: Callable[[T], str]) -> T:
    """Run one step, recording its outcome, time and a one-line detail."""
    record = next(s for s in summary.steps if s.name == name)
    started = time.monotonic()
    try:
        with timeline.step(name) as marked:
            result = action()
            marked.detail = describe(result)
    except BaseException as exc:
        record.outcome = "failed"
        record.detail = exc.message if isinstance(exc, KitError) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.seconds = time.monotonic() - started
    record.outcome = "ok"
    record.detail = describe(result)
    return result


def _name(path: Path) -> str:
    return path.name


def check_release(kit: Kit) -> plan.Release:
    """The release, its history and conflicts checked once; refused when models lack a migration."""
    release = plan.prepare(kit.alias)
    missing = checks.run(release).missing
    if missing:
        raise checks.missing_error(missing)
    return release


def verify(kit: Kit, baseline: integrity.IntegrityReport, summary: DeployReport | None = None,
           options: VerifyOptions | None = None) -> str:
    """verify-data after migrating, failing only on problems the release brought: a problem that
    was already there before it is reported, not undone for."""
    after = verify_data_integrity(kit.params, kit.settings, kit.alias, options)
    if summary is not None:
        summary.integrity = after
    new = integrity.new_problems(baseline, after)
    figures = (f"orphans {baseline.orphan_total} before, {after.orphan_total} after; "
               f"invalid indexes {len(baseline.invalid_indexes)} before, {len(after.invalid_indexes)} after")
    if new:
        raise OperationFailed(
            "verify-data", f"the release brought new data problems: {'; '.join(new[:3])} ({figures})",
            f"run {prog_name()} verify-data for the details",
        )
    return f"{len(after.counts)} models, {figures}, {after.duplicate_total} potential duplicates"


def deploy_checks() -> str:
    """Django's deployment checks, read by level: errors fail the step, warnings are counted."""
    from django.core.checks import run_checks

    messages = [m for m in run_checks(include_deployment_checks=True) if not m.is_silenced()]
    errors = [m for m in messages if m.is_serious()]
    if errors:
        first = errors[0]
        raise OperationFailed(
            "deploy-check",
            f"Django's deployment checks failed: {first.id}: {first.msg}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            "fix the settings, then run python manage.py check --deploy",
        )
    if not messages:
        return "no issues"
    return f"{len(messages)} warning(s): {', '.join(sorted({str(m.id) for m in messages}))}"


def undo_after(
    kit: Kit, release: plan.Release, outcome: MigrateOutcome, summary: DeployReport, report: Report,
    exc: BaseException,
) -> None:
    """A step after migrate failed: undo this run's migrations by the rules of `migrate`, then say so."""
    result = apply.RunResult(done=outcome.applied, own_writes=outcome.own_writes,
                             own_writes_known=outcome.own_writes_known, failed_at=time.monotonic())
    with timeline.step("undo", "undo") as marked:
        undone = undo.undo_run(kit, result, release.applied_before, summary.backup, report)
        marked.outcome = "ok" if undone.outcome == undo.ROLLED_BACK else "failed"
    cause = f"interrupted by {signals.describe(exc)}" if isinstance(exc, KeyboardInterrupt) else str(exc)
    migrate.raise_for(f"full-deploy failed after migrating ({cause})", undone, result, summary.backup,
                      "full-deploy")
