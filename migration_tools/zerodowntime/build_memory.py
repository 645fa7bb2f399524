"""Memory for a concurrent index build, so that PostgreSQL's validation never makes a writer wait.

`CREATE INDEX CONCURRENTLY` (and `REINDEX ... CONCURRENTLY`) ends by validating the new index: it
scans the index and hands the heap address of every entry to a sort bounded by
maintenance_work_mem. The scan calls the sort while it holds a leaf page's cleanup lock, so each
time the sort's memory fills, a whole batch is sorted and written to disk under that lock, and a
writer inserting into that page waits until it is done: 290 to 460 ms at 8 million rows and the
default 64 MB on the benchmark's machine, seen as `LWLock BufferContent` during `index validation:
scanning index`. With room for every entry (24 bytes each), nothing is written before the scan
ends and the lock is held for microseconds.

So for the statement only, the kit raises maintenance_work_mem to that size when it is larger than
the setting and within INDEX_BUILD_MEMORY, and keeps the build's parallel workers to the number the
old setting allowed (PostgreSQL gives a worker one more share of the memory, 32 MB each), so the
application does not lose more CPU to the build than before. It never lowers the setting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from pglast import parse_sql
from pglast.ast import IndexStmt, RangeVar, ReindexStmt
from pglast.enums import ReindexObjectType
from pglast.parser import ParseError

from migration_tools.zerodowntime import session_settings

log = logging.getLogger("migration_kit")

SORT_SLOT_BYTES = 24  # one entry of PostgreSQL's in-memory sort of heap addresses (a SortTuple)
MARGIN = 1.25  # rows written while the index builds, and planner estimates that run behind
SLACK_KB = 16 * 1024
WORKER_SHARE_KB = 32 * 1024  # plan_create_index_workers: each participant needs this much

_TABLE_SQL = """
SELECT c.reltuples::float8,
       pg_size_bytes(current_setting('maintenance_work_mem')) / 1024,
       current_setting('max_parallel_maintenance_workers')::int
FROM pg_class c
WHERE c.oid = coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)),
                       to_regclass(%s))
"""


def _quoted(relation: RangeVar) -> str:
    parts = [part for part in (relation.schemaname, relation.relname) if part]
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def built_relation(statement: str) -> tuple[str, bool] | None:
    """(the relation named, whether it is an index) when `statement` builds an index concurrently."""
    try:
        parsed = parse_sql(statement)
    except ParseError:
        return None
    if len(parsed) != 1:
        return None
    node = parsed[0].stmt
    if isinstance(node, IndexStmt) and node.concurrent and node.relation is not None:
        return _quoted(node.relation), False
    if isinstance(node, ReindexStmt) and node.relation is not None and any(
            getattr(param, "defname", "") == "concurrently" for param in node.params or ()):
        return _quoted(node.relation), node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX
    return None


def needed_kb(rows: float) -> int:
    """maintenance_work_mem (kB) that holds the validation's sort of `rows` entries in memory."""
    return int(max(rows, 0.0) * MARGIN * SORT_SLOT_BYTES / 1024) + SLACK_KB


def workers_allowed(memory_kb: int, most: int) -> int:
    """Parallel workers PostgreSQL would plan for a build with `memory_kb` (at most `most`)."""
    workers = most
    while workers > 0 and memory_kb // (workers + 1) < WORKER_SHARE_KB:
        workers -= 1
    return workers


@contextlib.contextmanager
def enough_for_validation(cursor: Any, statement: str, cap_kb: int) -> Iterator[None]:
    """Around one statement on `cursor`: maintenance_work_mem raised as the module says, then put back."""
    target = built_relation(statement) if cap_kb > 0 else None
    if target is None:
        yield
        return
    name, is_index = target
    cursor.execute(_TABLE_SQL, [name if is_index else None, name])
    row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:  # not there yet, or never analyzed: rows unknown
        yield
        return
    rows, current_kb, most_workers = float(row[0]), int(row[1]), int(row[2])
    want_kb = needed_kb(rows)
    if want_kb <= current_kb:
        yield
        return
    if want_kb > cap_kb:
        log.info("index build on %s: validating it needs about %d MB of maintenance_work_mem, above "
                 "INDEX_BUILD_MEMORY (%d MB); left at %d MB: writers may wait while it sorts",
                 name, want_kb // 1024, cap_kb // 1024, current_kb // 1024)
        yield
        return
    workers = workers_allowed(current_kb, most_workers)
    log.info("index build on %s (%.0f rows): maintenance_work_mem %d MB for this statement (was %d MB), "
             "%d parallel worker(s) at most as before", name, rows, want_kb // 1024, current_kb // 1024,
             workers)
    with session_settings.for_one_statement(cursor, {"maintenance_work_mem": f"{want_kb}kB",
                                                     "max_parallel_maintenance_workers": str(workers)}):
        yield
