"""`zero-downtime`: migrate without blocking the application, and measure that it was not blocked."""

from __future__ import annotations

import os
import time

import click

from migration_tools.cli import output, progress, reporting
from migration_tools.cli.options import Seconds, database_option
from migration_tools.core import runtime
from migration_tools.core.errors import prog_name


@click.command("zero-downtime")
@database_option
@click.option("--phase", type=click.Choice(["pre", "post"]), default=None,
              help="pre: apply up to the first migration only safe once the new code runs everywhere; "
              "post: the rest, after the rollout. Default: both, in order.")
@click.option("--allow-unsafe", is_flag=True,
              help="Apply statements the lint refuses (breaking the running code or blocking a large table).")
@click.option("--lock-timeout", type=Seconds(min=0.01), default=None, metavar="SECONDS",
              help="How long a statement that blocks the application may wait for its lock "
              "(default MIGRATION_KIT's LOCK_TIMEOUT, else 2).")
@click.option("--statement-timeout", type=Seconds(min=0.01), default=None, metavar="SECONDS",
              help="How long such a statement may run (default MIGRATION_KIT's STATEMENT_TIMEOUT, else 60).")
@click.option("--lock-tries", type=click.IntRange(min=1), default=None, metavar="N",
              help="Tries of a statement whose lock wait timed out "
              "(default MIGRATION_KIT's LOCK_TRIES, else 5).")
@click.option("--no-backup", is_flag=True, help="Skip the backup taken before migrating.")
@click.option("--no-verify", is_flag=True,
              help="Skip verify-data before and after migrating (on a large database its full scans share "
              "the server's CPU with the application); the run then does not look for new data problems.")
@click.option("--monitor/--no-monitor", default=True, show_default=True,
              help="Sample CPU, memory, disk and the database, and write the performance report.")
@click.option("--interval", type=Seconds(min=0.05), default=5.0, show_default=True, metavar="SECONDS",
              help="Seconds between monitoring samples.")
def command(alias: str, phase: str | None, allow_unsafe: bool, lock_timeout: float | None,
            statement_timeout: float | None, lock_tries: int | None, no_backup: bool, no_verify: bool,
            monitor: bool, interval: float) -> None:
    """Apply the pending migrations without blocking the application: short lock waits retried with
    backoff, indexes and constraints built the non-blocking way, the application's read and write
    stalls measured on every table the plan touches, a backup first and an undo on failure."""
    from django.conf import settings

    from migration_tools.deploy import preflight
    from migration_tools.zerodowntime import run
    from migration_tools.zerodowntime.settings import ZeroDowntimeSettings

    kit = runtime.start("zero-downtime", alias)
    config = ZeroDowntimeSettings.from_kit(
        getattr(settings, "MIGRATION_KIT", None), lock_timeout=lock_timeout,
        statement_timeout=statement_timeout, tries=lock_tries)
    preflight.run(kit.params, need_tools=not no_backup)
    options = run.Options(phase=phase or "both", allow_unsafe=allow_unsafe, backup=not no_backup,
                          deep_backup=os.environ.get("PM_PROFILE") == "enhanced", verify=not no_verify)
    started = time.monotonic()
    outcome = run.Outcome()
    with reporting.session(kit, "zero-downtime", enabled=monitor, interval=interval) as session, \
            progress.watching(kit.params, files=kit.paths.backups):
        session.section("backup", lambda: reporting.backup_section(outcome.backup))
        session.section("verify_data", lambda: {"skipped": "--no-verify"} if no_verify
                        else reporting.verify_section(outcome.integrity))
        run.run(kit, config, options, output.show, monitor=session.monitor, outcome=outcome)
        session.verdict = (f"applied {len(outcome.applied)} migration(s)" if outcome.applied
                           else "nothing to apply")
    elapsed = time.monotonic() - started
    kit.log.info("zero-downtime done applied=%d deferred=%d in %.1fs", len(outcome.applied),
                 len(outcome.deferred), elapsed)
    if outcome.deferred and phase == "pre":
        output.line(f"Left for --phase post ({len(outcome.deferred)}): {', '.join(outcome.deferred)}")
        output.line(f"Roll out the new code everywhere, then run: {prog_name()} zero-downtime --phase post")
    if outcome.applied:
        output.verdict(True, f"applied {len(outcome.applied)} migration(s) in {elapsed:.1f}s; "
                       f"{outcome.summary[0].lower() + outcome.summary[1:]}")
    elif outcome.deferred:
        output.verdict(True, "nothing to apply in the pre phase")
    else:
        output.verdict(True, "nothing to apply: the database is up to date")
