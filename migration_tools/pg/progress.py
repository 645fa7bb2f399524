"""What PostgreSQL says its backends are doing: pg_stat_progress_copy, _create_index, _cluster, _analyze.

Read over a connection of the kit's own, so the code doing the work (pg_dump, pg_restore, a
migration) needs no change: a COPY of the kit's client tools (their application_name is the kit's)
in any database, and every operation in the target database. `CopyTally` turns the COPYs seen over
time into tables and rows done of a whole dump or restore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migration_tools.core.djangoenv import APPLICATION_NAME

# One row per backend reporting progress: kind, pid, database, relation (this database's only;
# elsewhere the statement names it), phase, done and total units, bytes, the statement.
PROGRESS_SQL = """
WITH here AS (SELECT oid FROM pg_database WHERE datname = current_database()),
act AS (SELECT pid, application_name, left(query, 400) AS query FROM pg_stat_activity
        WHERE pid <> pg_backend_pid())
SELECT 'copy', p.pid, p.datname,
       CASE WHEN p.datid = (SELECT oid FROM here) THEN p.relid::regclass::text END,
       p.command, p.tuples_processed,
       CASE WHEN p.datid = (SELECT oid FROM here) AND p.command = 'COPY TO' THEN
         (SELECT NULLIF(greatest(c.reltuples, 0), 0)::bigint FROM pg_class c WHERE c.oid = p.relid) END,
       p.bytes_processed, a.query, a.application_name
  FROM pg_stat_progress_copy p JOIN act a USING (pid)
UNION ALL
SELECT 'create_index', p.pid, p.datname,
       CASE WHEN p.datid = (SELECT oid FROM here) THEN p.relid::regclass::text END, p.phase,
       CASE WHEN p.blocks_total > 0 THEN p.blocks_done ELSE p.tuples_done END,
       CASE WHEN p.blocks_total > 0 THEN p.blocks_total ELSE NULLIF(p.tuples_total, 0) END,
       NULL, a.query, a.application_name
  FROM pg_stat_progress_create_index p JOIN act a USING (pid)
UNION ALL
SELECT 'cluster', p.pid, p.datname,
       CASE WHEN p.datid = (SELECT oid FROM here) THEN p.relid::regclass::text END,
       p.command || ': ' || p.phase, p.heap_blks_scanned, NULLIF(p.heap_blks_total, 0), NULL, a.query,
       a.application_name
  FROM pg_stat_progress_cluster p JOIN act a USING (pid)
UNION ALL
SELECT 'analyze', p.pid, p.datname,
       CASE WHEN p.datid = (SELECT oid FROM here) THEN p.relid::regclass::text END, p.phase,
       p.sample_blks_scanned, NULLIF(p.sample_blks_total, 0), NULL, a.query, a.application_name
  FROM pg_stat_progress_analyze p JOIN act a USING (pid)
"""

# Estimated rows per user table of this database: what a dump of it will copy.
TABLE_ROWS_SQL = """
SELECT n.nspname || '.' || c.relname, greatest(c.reltuples, s.n_live_tup, 0)::bigint
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%'
"""

_NAME = r'(?:"(?:[^"]|"")+"|[\w$]+)'
COPY_RE = re.compile(rf"^\s*COPY\s+({_NAME}(?:\.{_NAME})?)", re.IGNORECASE)
INDEX_RE = re.compile(
    rf"\bINDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?({_NAME}(?:\.{_NAME})?)\s+ON\b"
    rf"|\bADD\s+CONSTRAINT\s+({_NAME})",
    re.IGNORECASE,
)


def unquote(name: str) -> str:
    return ".".join(
        part[1:-1].replace('""', '"') if part.startswith('"') else part for part in re.findall(_NAME, name)
    )


@dataclass(frozen=True)
class Activity:
    kind: str  # copy | create_index | cluster | analyze
    pid: int
    database: str
    relation: str
    phase: str
    done: int | None
    total: int | None
    bytes: int | None
    tool: bool  # one of the kit's client tools (pg_dump, pg_restore)
    index: str = ""  # create_index: the index being built

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    @property
    def direction(self) -> str:
        return "dump" if self.phase == "COPY TO" else "restore"

    def describe(self) -> str:
        """What it is doing, without the percentage (the display adds it)."""
        if self.kind == "copy":
            verb = "dumping" if self.direction == "dump" else "restoring"
            of = f" of ~{self.total:,}" if self.total else ""
            return f"{verb} {self.relation}: {self.done or 0:,}{of} rows"
        if self.kind == "create_index":
            return f"building {self.index or 'an index'}: {self.phase.removeprefix('building index: ')}"
        if self.kind == "cluster":
            return f"{self.relation}: {self.phase.lower()}"
        return f"analyzing {self.relation}: {self.phase}"


def _relation(row_relation: str | None, query: str, pattern: re.Pattern[str]) -> str:
    found = pattern.search(query or "")
    if found:
        return unquote(next(g for g in found.groups() if g))
    return row_relation or "?"


def read(conn: psycopg.Connection[Any], dbname: str) -> list[Activity]:
    """What is running now in `dbname` (every backend) or anywhere by the kit's tools."""
    found = []
    rows = conn.execute(PROGRESS_SQL).fetchall()
    for kind, pid, datname, rel, phase, done, total, size, query, app in rows:
        tool = app == APPLICATION_NAME
        if datname != dbname and not tool:
            continue
        relation = _relation(rel, query, COPY_RE) if kind == "copy" else rel or "?"
        index = _relation(f"an index of {relation}", query, INDEX_RE) if kind == "create_index" else ""
        found.append(
            Activity(
                str(kind),
                int(pid),
                str(datname),
                relation,
                str(phase or ""),
                None if done is None else int(done),
                None if total is None else int(total),
                None if size is None else int(size),
                tool,
                index,
            )
        )
    return found


def table_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {str(name): int(rows) for name, rows in conn.execute(TABLE_ROWS_SQL).fetchall()}


@dataclass
class CopyTally:
    """Tables and rows done of a whole dump or restore, from the COPYs seen at each poll.

    A table once seen and no longer copying counts as done with its expected rows; a small table
    copied between two polls is never seen, so `tables_done` may lag (the rows hardly do)."""

    direction: str  # dump | restore
    expected: dict[str, int]
    finished: set[str] = field(default_factory=set)
    current: dict[str, int] = field(default_factory=dict)
    bytes_done: int = 0

    def update(self, activities: list[Activity]) -> bool:
        """Take one poll's COPYs; True when this tally saw any. pg_dump (one job) copies the tables
        in name order: those before the one it is copying are done, seen or not."""
        now = {
            a.relation: a.done or 0 for a in activities if a.kind == "copy" and a.direction == self.direction
        }
        for relation in self.current:
            if relation not in now:
                self.finished.add(relation)
        if self.direction == "dump" and len(now) == 1:
            first = next(iter(now))
            self.finished |= {t for t in self.expected if t < first}
        self.current = now
        self.bytes_done = sum(
            a.bytes or 0 for a in activities if a.kind == "copy" and a.direction == self.direction
        )
        return bool(now)

    @property
    def tables_total(self) -> int:
        return len(self.expected)

    @property
    def rows_total(self) -> int:
        return sum(self.expected.values())

    @property
    def rows_done(self) -> int:
        done = sum(self.expected.get(t, 0) for t in self.finished)
        return done + sum(min(rows, self.expected.get(t, rows)) for t, rows in self.current.items())

    @property
    def fraction(self) -> float | None:
        total = self.rows_total
        return None if total <= 0 else max(0.0, min(1.0, self.rows_done / total))

    def describe(self) -> str:
        verb = "pg_dump" if self.direction == "dump" else "pg_restore"
        tables = (
            f"{len(self.finished)} of {self.tables_total} tables done"
            if self.tables_total
            else f"{len(self.finished)} tables done"
        )
        rows = (
            f"{self.rows_done:,} of ~{self.rows_total:,} rows"
            if self.rows_total
            else f"{self.rows_done:,} rows"
        )
        now = ", ".join(sorted(self.current))
        return f"{verb}: {tables}, {rows}" + (f" (now {now})" if now else "")
