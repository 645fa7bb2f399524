"""Rollback with the pgBackRest tier: a point-in-time restore of the WHOLE cluster to a restore point.

In place (`rollback NAME`, `emergency-rollback`):
  1. refuse (exit 2, nothing changed) without SERVER_STOP_COMMAND and SERVER_START_COMMAND, or when
     the point's backup is gone from the repository;
  2. one more pgBackRest backup and restore point of the state being replaced (reason
     pre-rollback), so it stays recoverable by name;
  3. stop the server (the configured command), `pgbackrest restore --delta --set=LABEL
     --type=name --target=POINT --target-timeline=current --target-action=promote`, start it,
     wait until it accepts connections and is out of recovery;
  4. verify the applied migrations and row counts of this database against the metadata.
  A failed restore is undone by restoring the safety point the same way; when that fails too,
  the server stays stopped and the error says so, with the commands that continue.
Side copy (`rollback NAME --side-datadir DIR --side-port P`): restored into DIR with archiving off,
started with SIDE_START_COMMAND on port P, verified there; the running cluster is not touched.
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from migration_tools.backup import pgbackrest, pitr_take
from migration_tools.backup.pitr_meta import PitrMeta
from migration_tools.core import signals
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import BadInput, OperationFailed, prog_name
from migration_tools.core.events import Event, Report
from migration_tools.core.pgbackrest_config import PgBackRestSettings
from migration_tools.core.runtime import Kit
from migration_tools.pg import catalog, db, tools
from migration_tools.restore import pitr_verify

COMMAND_TIMEOUT_S = 300.0
NEXT = "check {what} in MIGRATION_KIT['PGBACKREST'] and the server's log"


@dataclass
class PitrOutcome:
    meta: PitrMeta
    seconds: float
    safety: str = ""  # the restore point holding the replaced state ('' for a side copy)
    where: str = ""  # the side copy's data directory and port


def check_backup_present(settings: PgBackRestSettings, meta: PitrMeta) -> None:
    labels = {s.label for s in pgbackrest.sets(settings)[0]}
    if meta.backup_label not in labels:
        raise BadInput(
            "pitr-backup-gone",
            f"restore point {meta.restore_point.name} follows pgBackRest backup {meta.backup_label}, which "
            "is no longer in the repository (expired); nothing was changed",
            "pick another restore point: python rollback_manager.py list-backups",
        )


def require_server_commands(settings: PgBackRestSettings) -> None:
    if not settings.stop_command or not settings.start_command:
        raise BadInput(
            "pitr-no-server-command",
            "a point-in-time restore stops and starts the server, and MIGRATION_KIT['PGBACKREST'] has "
            "no SERVER_STOP_COMMAND and SERVER_START_COMMAND; nothing was changed",
            "configure both (docs/scale.md), or restore beside the running cluster with --side-datadir",
        )


def describe(meta: PitrMeta, databases: list[str]) -> list[str]:
    point = meta.restore_point
    return [
        f"Point-in-time restore of the WHOLE CLUSTER to restore point '{point.name}' "
        f"(LSN {point.lsn}, {point.time}), from pgBackRest backup {meta.backup_label}.",
        f"Every database of the cluster goes back to that moment: {', '.join(databases) or '(none)'}.",
        "Everything committed after it, in any of them, is replaced; a pgBackRest backup of the current "
        "state is taken first so it stays recoverable.",
        f"The server is stopped and started (about {meta.migration_count} applied migrations and "
        f"{sum(meta.row_counts.values()):,} rows of '{meta.database}' are checked afterwards).",
    ]


def _command(argv: tuple[str, ...] | list[str], what: str) -> None:
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False, start_new_session=tools.OWN_SESSION,
                              env=pgbackrest.startup_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed("pitr-server-command", f"{what} ({shlex.join(argv)}) did not run: {exc}",
                              NEXT.format(what=what)) from exc
    if done.returncode != 0:
        raise OperationFailed("pitr-server-command", f"{what} ({shlex.join(argv)}) failed: "
                              + tools.tool_failure(argv[0], done.returncode, done.stderr or done.stdout),
                              NEXT.format(what=what))


def wait_up(params: ConnParams, timeout_s: float) -> None:
    """Until the server accepts connections and has left recovery (promoted at the point)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with db.connect(params, purpose="rollback") as conn:
                if not db.scalar(conn, "SELECT pg_is_in_recovery()"):
                    return
                last = "still in recovery"
        except (psycopg.Error, OperationFailed, BadInput) as exc:
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        time.sleep(0.5)
    raise OperationFailed("pitr-not-up", f"the restored server was not up within {timeout_s:g}s ({last})",
                          "read the server's log; if it still recovers, raise PGBACKREST's RECOVERY_TIMEOUT")


def _continue_text(settings: PgBackRestSettings, label: str, point: str) -> str:
    restore = shlex.join(pgbackrest.argv(settings, "restore", "--delta", f"--set={label}", "--type=name",
                                          f"--target={point}", "--target-timeline=current",
                                          "--target-action=promote"))
    return f"{restore}; then {shlex.join(settings.start_command)}"


def roll_back_in_place(kit: Kit, meta: PitrMeta, report: Report) -> PitrOutcome:
    settings = pitr_take.settings_of(kit)
    started = time.monotonic()
    report(Event("step", "Taking a pgBackRest backup of the state being replaced ..."))
    safety = pitr_take.create(kit, "pre-rollback", report=report)
    safe_label, safe_point = safety.meta.backup_label, safety.meta.restore_point.name
    kit.log.warning("rollback pitr: stopping the server for restore point %s (safety point %s)",
                    meta.restore_point.name, safe_point)
    with signals.shielded(lambda text: report(Event("warn", text)), "the point-in-time restore"):
        _stop_restore_start(kit, settings, meta, safe_label, safe_point, report)
    pitr_verify.check(kit.params, meta, report)
    return PitrOutcome(meta, time.monotonic() - started, safety=safe_point)


def _stop_restore_start(kit: Kit, settings: PgBackRestSettings, meta: PitrMeta, safe_label: str,
                        safe_point: str, report: Report) -> None:
    """Stop, restore to the point, start; on failure the same to the safety point, else say how to go on."""
    report(Event("step", "Stopping the server ..."))
    _command(settings.stop_command, "SERVER_STOP_COMMAND")
    try:
        report(Event("step", f"pgbackrest restore --delta to '{meta.restore_point.name}' ..."))
        pgbackrest.restore(settings, meta.backup_label, meta.restore_point.name, "--delta",
                           "--target-timeline=current")
        _command(settings.start_command, "SERVER_START_COMMAND")
        wait_up(kit.params, settings.recovery_timeout)
    except OperationFailed as exc:
        cause = exc.message
        kit.log.error("rollback pitr failed: %s; restoring the safety point %s", cause, safe_point)
        report(Event("fail", f"the restore failed ({cause}); putting back the state before the rollback ..."))
        try:
            if _running(kit.params):
                _command(settings.stop_command, "SERVER_STOP_COMMAND")
            pgbackrest.restore(settings, safe_label, safe_point, "--delta", "--target-timeline=current")
            _command(settings.start_command, "SERVER_START_COMMAND")
            wait_up(kit.params, settings.recovery_timeout)
        except OperationFailed as second:
            raise OperationFailed(
                "pitr-failed",
                f"the point-in-time restore failed ({cause}) and putting back the state before it failed "
                f"too ({second.message}); the server may be stopped; nothing was "
                f"deleted: the replaced state is restore point {safe_point} of backup {safe_label}",
                f"run {_continue_text(settings, safe_label, safe_point)}",
            ) from exc
        raise OperationFailed(
            "pitr-failed", f"the point-in-time restore failed ({cause}); the cluster is back at the state "
            f"before the rollback (restore point {safe_point})", f"fix the cause, run {prog_name()} again",
        ) from exc


def _running(params: ConnParams) -> bool:
    try:
        with db.connect(params, purpose="rollback"):
            return True
    except (psycopg.Error, OperationFailed, BadInput):
        return False


def restore_beside(kit: Kit, meta: PitrMeta, datadir: Path, port: int, report: Report) -> PitrOutcome:
    settings = pitr_take.settings_of(kit)
    if not settings.side_start_command:
        raise BadInput("pitr-no-side-command", "MIGRATION_KIT['PGBACKREST'] has no SIDE_START_COMMAND; "
                       "nothing was changed", "configure it (docs/scale.md), then run the rollback again")
    if datadir.exists() and any(datadir.iterdir()):
        raise BadInput("pitr-side-not-empty", f"--side-datadir {datadir} is not empty; nothing was changed",
                       "pass a new or empty directory")
    started = time.monotonic()
    report(Event("step", f"pgbackrest restore into {datadir} (archiving off) ..."))
    pgbackrest.restore(settings, meta.backup_label, meta.restore_point.name, f"--pg1-path={datadir}",
                       "--archive-mode=off", "--target-timeline=current")
    filled = [part.replace("{datadir}", str(datadir)).replace("{port}", str(port))
              for part in settings.side_start_command]
    _command(filled, "SIDE_START_COMMAND")
    side = dataclasses.replace(kit.params, port=port)
    wait_up(side, settings.recovery_timeout)
    pitr_verify.check(side, meta, report)
    return PitrOutcome(meta, time.monotonic() - started, where=f"{datadir} on port {port}")


def databases_now(params: ConnParams) -> list[str]:
    with db.connect(params, purpose="rollback") as conn:
        return [r[0] for r in conn.execute(catalog.CLUSTER_DATABASES_SQL).fetchall()]
