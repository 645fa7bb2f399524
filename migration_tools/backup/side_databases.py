"""Databases beside the target: the ones rollbacks keep, and the ones interrupted commands leave.

Kept: `<db>__pre_rollback_<stamp>` (the database a rollback replaced) and `<db>__rolled_back_<stamp>`
(the restored one, set aside by the undo command a rollback prints). They are kept on purpose and
pile up: list-backups and status show them with their size, and cleanup-backups applies the
backups' retention to them (retention.beyond_retention) by the UTC time in their stamp.

Leftovers: `<db>__restore_<stamp>`, the copy a killed rollback was restoring into (a leftover only
while nobody holds the deploy lock: a running rollback holds it), and `kitcheck_<db>_<hex>`, the
scratch database of a killed deep check (backup.deep). A deep check does not take the deploy lock,
so a scratch database goes only when no session is connected to it and it is older than
SCRATCH_MIN_AGE. pg_database records no creation time; the age comes, in this order, from a stamp
in the name, from the modification time of the database's PG_VERSION file (written once, by
CREATE DATABASE; pg_stat_file needs a superuser or a role granted it), or from the commit time of
its pg_database row (with track_commit_timestamp on; an ALTER DATABASE makes it younger, never
older). With none of them the age is unknown: the database then goes only if no session connects to
it for QUIET_WATCH_S (a running deep check is connected for all but milliseconds of its life).
Either way connections to it are blocked before a plain DROP (no FORCE), so a session that came in
meanwhile makes the drop fail rather than be ended.

Every name is matched exactly as pg.databases.side_name and deep.scratch_name make it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from migration_tools.backup import deep
from migration_tools.backup.retention import beyond_retention
from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.redact import redact
from migration_tools.core.sizes import human_size
from migration_tools.pg import databases, db

KEPT, RESTORE, SCRATCH = "kept", "restore", "scratch"
KEPT_TAGS = (databases.ASIDE_TAG, databases.UNDONE_TAG)
SCRATCH_MIN_AGE = timedelta(minutes=5)
QUIET_WATCH_S = 5.0
_SCRATCH_TAIL = re.compile(r"[0-9a-f]{8}|[0-9]{8}_[0-9]{6}_[0-9a-f]{4}")  # its token, or a stamp


@dataclass(frozen=True)
class SideDatabase:
    name: str
    kind: str  # KEPT, RESTORE or SCRATCH
    created: datetime | None  # UTC; None when nothing tells
    age_from: str  # what `created` comes from: "its name", "its PG_VERSION file", ... or ""
    size: int | None  # None when the role may not read it
    sessions: int
    allows_connections: bool = True

    def age(self, now: datetime) -> timedelta | None:
        return None if self.created is None else now - self.created


@dataclass(frozen=True)
class Survey:
    """What pg_database says about the target and the databases beside it."""

    target: str
    maintenance_db: str
    target_exists: bool
    allows_connections: bool
    kept: list[SideDatabase] = field(default_factory=list)  # newest first
    restore_copies: list[SideDatabase] = field(default_factory=list)
    scratch: list[SideDatabase] = field(default_factory=list)

    @property
    def newest_aside(self) -> SideDatabase | None:
        """The newest `__pre_rollback_` database: the live one before the newest rollback."""
        marker = f"__{databases.ASIDE_TAG}_"
        return next((d for d in self.kept if marker in d.name), None)


def stamp_time(stamp: str) -> datetime | None:
    """The UTC time a side name's stamp (`YYYYmmdd_HHMMSS[_xxxx]`) holds."""
    try:
        moment = datetime.strptime(stamp[: len("20260101_000000")], databases.STAMP_TIME_FORMAT)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc)


def is_scratch_of(name: str, target: str) -> bool:
    prefix = deep.scratch_prefix(target)
    return name.startswith(prefix) and _SCRATCH_TAIL.fullmatch(name[len(prefix) :]) is not None


def _details_query(conn: psycopg.Connection[Any]) -> sql.Composed:
    # EXECUTE on a function is checked when the statement starts, even in a CASE branch never
    # taken: pg_stat_file appears in the query only when this role may call it.
    may_stat = db.scalar(conn, "SELECT has_function_privilege('pg_stat_file(text, boolean)', 'EXECUTE')")
    file_time = sql.SQL(
        "CASE WHEN d.dattablespace = (SELECT oid FROM pg_tablespace WHERE spcname = 'pg_default') "
        "THEN (pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification END"
        if may_stat
        else "NULL::timestamptz"
    )
    return sql.SQL(
        """
        SELECT d.datname, d.datallowconn,
               CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                         OR pg_has_role('pg_read_all_stats', 'USAGE')
                    THEN pg_database_size(d.oid) END,
               (SELECT count(*) FROM pg_stat_activity a
                WHERE a.datid = d.oid AND a.pid <> pg_backend_pid()),
               {file_time},
               CASE WHEN current_setting('track_commit_timestamp') = 'on'
                    THEN pg_xact_commit_timestamp(d.xmin) END
        FROM pg_database d WHERE d.datname = ANY(%s)
        """
    ).format(file_time=file_time)


def survey(conn: psycopg.Connection[Any], target: str) -> Survey:
    """The target's state and its side databases, from a connection to the maintenance database."""
    sides = databases.side_databases(conn, target)
    kinds: dict[str, tuple[str, str]] = {}  # name -> (kind, the stamp-like tail of its name)
    for tag, names in sides.items():
        for name in names:
            kinds[name] = (RESTORE if tag == databases.RESTORE_TAG else KEPT, name.rpartition(f"__{tag}_")[2])
    prefix = deep.scratch_prefix(target)
    for (name,) in conn.execute("SELECT datname FROM pg_database").fetchall():
        if is_scratch_of(str(name), target):
            kinds[str(name)] = (SCRATCH, str(name)[len(prefix) :])
    rows = conn.execute(_details_query(conn), ([target, *kinds],)).fetchall()
    found: dict[str, list[SideDatabase]] = {KEPT: [], RESTORE: [], SCRATCH: []}
    exists, allows = False, True
    for name, allow, size, sessions, file_time, commit_time in rows:
        if name == target:
            exists, allows = True, bool(allow)
            continue
        kind, tail = kinds[name]
        sources = ((stamp_time(tail), "its name"), (file_time, "its PG_VERSION file"),
                   (commit_time, "its commit timestamp"))
        created, source = next(((t, s) for t, s in sources if t is not None), (None, ""))
        size = None if size is None else int(size)
        found[kind].append(SideDatabase(str(name), kind, created, source, size, int(sessions), bool(allow)))
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    found[KEPT].sort(key=lambda d: (d.created or oldest, d.name), reverse=True)
    return Survey(target, str(conn.info.dbname), exists, allows, found[KEPT],
                  sorted(found[RESTORE], key=lambda d: d.name), sorted(found[SCRATCH], key=lambda d: d.name))


def inspect(params: ConnParams, purpose: str) -> Survey:
    """survey() over a connection of its own; raises KitError when the server cannot be reached."""
    with databases.maintenance(params, purpose) as conn:
        return survey(conn, params.dbname)


# -- cleanup -------------------------------------------------------------------------------------


@dataclass
class DatabasePlan:
    """Which side databases cleanup-backups drops, and which it leaves, with why."""

    drop: list[SideDatabase] = field(default_factory=list)
    keep: list[SideDatabase] = field(default_factory=list)  # kept databases retention keeps
    skipped: list[tuple[SideDatabase, str]] = field(default_factory=list)


def plan_drops(
    found: Survey, *, keep: int, older_than_days: float | None, now: datetime, lock_holder: str
) -> DatabasePlan:
    """Retention over the kept databases; every leftover that is safe to drop.

    `lock_holder` names who holds the target's deploy lock ('' when free, or when this process
    holds it): while someone does, a restore copy may be theirs.
    """
    plan = DatabasePlan()
    for index, kept in enumerate(found.kept):
        created = kept.created or now
        gone = beyond_retention(index, created, keep=keep, older_than_days=older_than_days, now=now)
        (plan.drop if gone else plan.keep).append(kept)
    for copy in found.restore_copies:
        if lock_holder:
            plan.skipped.append((copy, f"{lock_holder} holds the deploy lock and may be restoring into it"))
        else:
            plan.drop.append(copy)
    for scratch in found.scratch:
        age = scratch.age(now)
        if scratch.sessions:
            plan.skipped.append((scratch, f"{scratch.sessions} session(s) connected: a deep check uses it"))
        elif age is not None and age < SCRATCH_MIN_AGE:
            plan.skipped.append(
                (scratch, f"created {age.total_seconds() / 60:.0f} min ago (from {scratch.age_from}): a "
                          "deep check may still be running; run cleanup-backups again later")
            )
        else:
            plan.drop.append(scratch)
    return plan


def describe(side: SideDatabase, now: datetime) -> str:
    """What a side database is, for a line of cleanup-backups or status."""
    size = "size unknown" if side.size is None else human_size(side.size)
    if side.kind == KEPT:
        ended = f", {side.sessions} session(s) connected (ended by a drop)" if side.sessions else ""
        return f"kept since {when(side.created)}, {size}{ended}"
    if side.kind == RESTORE:
        return f"left by an interrupted rollback, {size}"
    age = side.age(now)
    created = (
        f"created {when(side.created)} (from {side.age_from})" if age is not None
        else f"age unknown: dropped only if no session connects within {QUIET_WATCH_S:.0f}s"
    )
    return f"left by an interrupted deep check, {created}, {size}"


def when(moment: datetime | None) -> str:
    return "?" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _sessions(conn: psycopg.Connection[Any], name: str) -> int:
    return int(db.scalar(
        conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
    ))


def _quiet(conn: psycopg.Connection[Any], name: str, seconds: float) -> bool:
    """True when no session was connected to `name` at any look during `seconds`."""
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if _sessions(conn, name):
            return False
        time.sleep(0.1)
    return True


def _drop_idle(conn: psycopg.Connection[Any], name: str) -> bool:
    """Block new connections, then a plain DROP if nobody is connected; False when left in use."""
    databases.set_allow_connections(conn, name, False)
    try:
        if not _sessions(conn, name):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            return True
    except psycopg.Error:
        if databases.exists(conn, name):
            databases.set_allow_connections(conn, name, True)
        raise
    databases.set_allow_connections(conn, name, True)
    return False


def apply_drops(
    conn: psycopg.Connection[Any], plan: DatabasePlan, say: Callable[[SideDatabase], None]
) -> tuple[list[SideDatabase], list[tuple[SideDatabase, str]]]:
    """Drop what the plan says (the caller holds the deploy lock); returns (dropped, failed).

    Kept databases and restore copies go with DROP DATABASE ... WITH (FORCE); a scratch database
    only if it is idle (see the module's docstring), else it joins `plan.skipped`.
    """
    dropped: list[SideDatabase] = []
    failed: list[tuple[SideDatabase, str]] = []
    in_use = "a session connected to it: a deep check is running"
    for side in plan.drop:
        try:
            if side.kind == SCRATCH:
                if side.created is None and not _quiet(conn, side.name, QUIET_WATCH_S):
                    plan.skipped.append((side, in_use))
                    continue
                say(side)
                if not _drop_idle(conn, side.name):
                    plan.skipped.append((side, in_use))
                    continue
            else:
                say(side)
                databases.drop(conn, side.name)
        except psycopg.Error as exc:
            failed.append((side, redact(str(exc)).strip().splitlines()[0]))
            continue
        dropped.append(side)
    return dropped, failed
