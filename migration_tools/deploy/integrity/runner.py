"""Run the checks' statements on a few parallel connections, each statement under a timeout.

Statements are grouped by the table they read; a group runs on one connection, the largest
tables first, so two connections never scan the same table at once and the longest work starts
first. A statement that times out or fails is a `Failure`, which the report lists as not checked:
never as clean.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, sql

from migration_tools.core.djangoenv import ConnParams
from migration_tools.pg import db

PURPOSE = "verify-data"


@dataclass(frozen=True)
class Task:
    key: Hashable
    table: str  # the table the statement reads most: tasks of one table run on one connection
    size: int  # the table's pages: larger groups start first
    query: sql.Composable
    params: tuple[object, ...] = ()
    many: bool = False  # all rows, not just the first
    planner_off: tuple[str, ...] = ()  # planner methods (enable_* settings) turned off for this statement


@dataclass(frozen=True)
class Failure:
    reason: str


Result = Any  # the first row (a tuple), all rows (a list) for `many`, or a Failure


def _reason(exc: psycopg.Error, timeout_s: float) -> str:
    if isinstance(exc, errors.QueryCanceled):
        return f"timed out after {timeout_s:g}s"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"


def _run_one(conn: psycopg.Connection[Any], task: Task, timeout_s: float) -> Result:
    try:
        for name in task.planner_off:
            conn.execute(sql.SQL("SET {} = off").format(sql.Identifier(name)))
        try:
            cursor = conn.execute(task.query, task.params or None)
            return cursor.fetchall() if task.many else cursor.fetchone()
        finally:
            for name in task.planner_off:
                if not (conn.closed or conn.broken):
                    conn.execute(sql.SQL("RESET {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        if conn.closed or conn.broken:
            raise
        return Failure(_reason(exc, timeout_s))
    except psycopg.Error as exc:
        return Failure(_reason(exc, timeout_s))


def groups_of(tasks: Sequence[Task]) -> list[list[Task]]:
    """Tasks per table, the largest table first (ties by name, for a stable order)."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task.table, []).append(task)
    return sorted(groups.values(), key=lambda g: (-max(t.size for t in g), g[0].table))


def run(params: ConnParams, tasks: Sequence[Task], *, jobs: int, timeout_s: float,
        progress: Callable[[int, int], None] | None = None, gentle: bool = False) -> dict[Hashable, Result]:
    """Every task's result, keyed by task.key; raises only when a connection cannot be made or is lost.
    `progress(tables done, tables)` is called as each table's checks end (from the worker threads);
    `gentle`: no parallel workers (zero-downtime checks while the application runs on few cores)."""
    pending = groups_of(tasks)
    total, finished = len(pending), [0]
    results: dict[Hashable, Result] = {}
    lock = threading.Lock()
    conns: list[psycopg.Connection[Any]] = []
    crashed: list[BaseException] = []

    def next_group() -> list[Task] | None:
        with lock:
            return pending.pop(0) if pending and not crashed else None

    def worker() -> None:
        try:
            with db.connect(params, purpose=PURPOSE) as conn:
                with lock:
                    conns.append(conn)
                limit = sql.Literal(f"{max(1, int(timeout_s * 1000))}ms")
                conn.execute(sql.SQL("SET statement_timeout = {}").format(limit))
                if gentle:
                    conn.execute("SET max_parallel_workers_per_gather = 0")
                while (group := next_group()) is not None:
                    for task in group:
                        found = _run_one(conn, task, timeout_s)
                        with lock:
                            results[task.key] = found
                    with lock:
                        finished[0] += 1
                    if progress is not None:
                        progress(finished[0], total)
        except BaseException as exc:  # reported by the calling thread
            with lock:
                crashed.append(exc)

    threads = [threading.Thread(target=worker, name=f"verify-data-{i}", daemon=True)
               for i in range(max(1, min(jobs, len(pending))))] if pending else []
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except BaseException:
        with lock:
            crashed.append(KeyboardInterrupt())
            for conn in conns:
                with contextlib.suppress(Exception):
                    getattr(conn, "cancel_safe", conn.cancel)()
        raise
    if crashed:
        raise crashed[0]
    return results
