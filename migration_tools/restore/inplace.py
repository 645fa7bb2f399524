"""Rollback in place, for a role that may not create databases (or with --in-place).

One pre-rollback safety backup per rollback, then ONE transaction fed to psql (restore.inplace_sql
has its SQL, restore.transaction feeds it): take every lock first, with a short lock wait, then
drop what the role owns (large objects included), restore the archive and check the row counts
and applied migrations before COMMIT. Tables created after the backup are gone, and any failure
ends the session without COMMIT: PostgreSQL rolls everything back. Objects the role does not own
(and extension members) are left alone; if the archive needs to recreate one of them the
transaction fails and nothing changes.

The application never waits on the rollback longer than one try's lock wait (the plan's
lock_timeout_s): when the locks are not granted in time the try ends, the application goes on,
and the rollback tries again after a pause (LOCK_TRIES tries at most, pauses doubling). A session
that held a lock on the tables through two failed tries in a row is ended when the role may end
it, and said so; one it may not end is named, with the privilege that would let the role end it.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import psycopg

from migration_tools.core.errors import KitError, OperationFailed, RolledBack
from migration_tools.core.events import Report, step
from migration_tools.pg import db, sessions
from migration_tools.restore import inplace_sql
from migration_tools.restore.plan import LOCK_TRIES
from migration_tools.restore.transaction import LockWaitTimedOut, run_transaction
from migration_tools.restore.verify import RestoreOutcome, analyze_and_compare

if TYPE_CHECKING:
    from migration_tools.core.runtime import Kit
    from migration_tools.restore.plan import RollbackPlan

FIRST_PAUSE_S = 0.5  # then 1, 2, 4 s
HINT = (
    "fix the cause (tables and large objects of other roles must be dropped by their owner), then run "
    "the rollback again"
)


def _one_try(kit: Kit, plan: RollbackPlan) -> int:
    """One transaction; returns how many objects it dropped. Raises LockWaitTimedOut or KitError."""
    with db.connect(kit.params, purpose="rollback plan") as conn:
        drops = inplace_sql.drop_statements(conn)
        epilogue = inplace_sql.check_block(conn, plan.meta.row_counts, plan.meta.applied_migrations)
    run_transaction(
        kit,
        inplace_sql.prelude(drops, plan.lock_timeout_s),
        ["--single-transaction", "--no-owner", "--file=-", str(plan.dump)],
        epilogue,
    )
    return len(drops)


def _holders(kit: Kit) -> tuple[str, list[sessions.Session]]:
    """(the kit's role, the sessions holding locks on the tables it replaces), as far as it can tell."""
    with contextlib.suppress(KitError, psycopg.Error), \
            db.connect(kit.params, purpose="rollback locks") as conn:
        return sessions.role(conn), sessions.lock_holders(conn)
    return kit.params.user, []


def _end(kit: Kit, found: list[sessions.Session], report: Report) -> int:
    ended: list[sessions.Session] = []
    if found:
        with contextlib.suppress(KitError, psycopg.Error), \
                db.connect(kit.params, purpose="rollback locks") as conn:
            ended = sessions.terminate(conn, found)
    if ended:
        report(step(f"  ended {len(ended)} session(s) that held locks on the tables to replace through two "
                    f"tries: {sessions.listed(ended)}"))
        kit.log.warning("in-place rollback ended %d session(s) holding locks: %s",
                        len(ended), sessions.listed(ended))
    return len(ended)


def _restore(kit: Kit, plan: RollbackPlan, report: Report, safety: str) -> int:
    """Try until the transaction commits; returns how many blocking sessions were ended."""
    wait = plan.lock_timeout_s
    before: set[int] = set()
    ended = 0
    for attempt in range(1, LOCK_TRIES + 1):
        try:
            report(step(f"Restoring {plan.dump.name} in place in one transaction (try {attempt} of "
                        f"{LOCK_TRIES}, waiting at most {wait:g}s for its locks)"))
            dropped = _one_try(kit, plan)
            kit.log.info("in-place restore committed on try %d (dropped %d object(s))", attempt, dropped)
            return ended
        except LockWaitTimedOut:
            me, holders = _holders(kit)
            persistent = [s for s in holders if s.pid in before]
            if attempt == LOCK_TRIES:  # name those that held on, not one that was passing by
                raise _locked_out(me, plan, persistent or holders, safety) from None
            before = {s.pid for s in holders}
            pause = FIRST_PAUSE_S * 2 ** (attempt - 1)
            held = f" (held by {sessions.listed(holders)})" if holders else ""
            report(step(f"  the locks on the tables to replace were not granted within {wait:g}s{held}; "
                        f"nothing was changed; trying again in {pause:g}s"))
            kit.log.warning("in-place rollback try %d: locks not granted within %gs%s", attempt, wait, held)
            ended += _end(kit, [s for s in persistent if s.may_end], report)
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _locked_out(me: str, plan: RollbackPlan, holders: list[sessions.Session], safety: str) -> RolledBack:
    wait = plan.lock_timeout_s
    held = f": held by {sessions.listed(holders)}" if holders else ""
    stuck = [s for s in holders if not s.may_end]
    if stuck:
        hint = (f"end or commit those sessions (role '{me}' may not end them: "
                f"{sessions.privilege_hint(me, stuck)}), then run the rollback again")
    else:
        hint = ("end the application's long transactions (or give a longer --lock-timeout), then run the "
                "rollback again")
    return RolledBack(
        "rollback-locked",
        f"the tables to replace could not be locked within {wait:g}s in {LOCK_TRIES} tries (the application "
        f"waited at most {wait:g}s each time){held}; the transaction was rolled back: database "
        f"'{plan.database}' is as it was (safety backup {safety} kept)",
        hint,
    )


def run(kit: Kit, plan: RollbackPlan, report: Report) -> RestoreOutcome:
    from migration_tools.backup import create as backup

    target = plan.database
    why = plan.why_in_place or "as planned"
    report(step(f"Taking a pre-rollback safety backup (restoring in place: {why})"))
    safety = backup.create_backup(kit, "pre-rollback")
    kit.log.info("pre-rollback safety backup %s", safety.dump.name)
    undo = f"python rollback_manager.py rollback {safety.dump.name} --yes"
    try:
        ended = _restore(kit, plan, report, safety.dump.name)
    except RolledBack:
        raise
    except (KitError, psycopg.Error) as exc:
        what = exc.message if isinstance(exc, KitError) else str(exc).strip().splitlines()[0]
        raise RolledBack(
            getattr(exc, "error_id", "rollback-sql"),
            f"{what}; the transaction was rolled back: database '{target}' is as it was "
            f"(safety backup {safety.dump.name} kept)",
            HINT,
        ) from exc
    report(step(f"ANALYZE '{target}' and verify its row counts and applied migrations "
                "against the metadata"))
    check = analyze_and_compare(kit.params, target, plan.meta.row_counts, plan.meta.applied_migrations)
    if not check.ok:
        raise OperationFailed(
            "restore-verify",
            f"after the restore '{target}' does not match the backup's metadata: "
            + "; ".join(check.problems[:3]),
            f"restore the previous state with: {undo}",
        )
    return RestoreOutcome(snapshot=check.snapshot, kept=safety.dump.name, undo=undo, sessions_ended=ended)
