"""Statements that would queue in front of the application wait briefly, then try again.

The kit's layer of the schema editor, under django-pg-zero-downtime-migrations' own (which splits
Django's operations into their non-blocking forms): every single statement passes here. A
statement whose lock conflicts with the application's reads or writes runs under a short
`lock_timeout` and a `statement_timeout`; when its lock wait times out it is tried again after an
exponential, jittered delay, so it never sits in the lock queue in front of the application's
queries. Statements that only take SHARE UPDATE EXCLUSIVE (`CREATE INDEX CONCURRENTLY`,
`VALIDATE CONSTRAINT`) wait for older transactions by design: no timeouts for them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from django.db import transaction
from pglast import parse_sql
from pglast.parser import ParseError

from migration_tools.core.redact import redact
from migration_tools.lint.classify import classify
from migration_tools.lint.effects import SUE
from migration_tools.zerodowntime import build_memory, session_settings

log = logging.getLogger("migration_kit")

BLOCKING, WAITS, PLAIN = "blocking", "waits", "plain"
# Modes that conflict with ROW EXCLUSIVE (the application's writes) or ACCESS SHARE (its reads).
_BLOCKS_APPLICATION = frozenset({"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"})
_SETTINGS = ("SET ", "RESET ", "SHOW ", "SELECT ")
MAX_DELAY_S = 30.0


def statement_kind(text: str) -> str:
    """BLOCKING (a lock the application would queue behind), WAITS (SHARE UPDATE EXCLUSIVE only:
    waits for older transactions by design) or PLAIN (nothing the application notices)."""
    stripped = text.lstrip().upper()
    if stripped.startswith(_SETTINGS):
        return PLAIN
    try:
        parsed = parse_sql(text)
    except ParseError:
        return BLOCKING  # unknown: the cautious reading
    locks = {effect.lock for raw in parsed for effect in classify(raw.stmt).effects}
    if locks & _BLOCKS_APPLICATION:
        return BLOCKING
    return WAITS if SUE in locks else PLAIN


def delay(attempt: int, base: float, *, rng: random.Random | None = None) -> float:
    """Seconds before try `attempt + 1`: base·2^(attempt-1), half of it fixed, half random."""
    full = min(MAX_DELAY_S, base * 2 ** (attempt - 1))
    return full / 2 + (rng or random).uniform(0, full / 2)


def is_lock_timeout(exc: BaseException) -> bool:
    """A lock wait that lock_timeout ended (SQLSTATE 55P03), as Django or psycopg raise it."""
    return any(getattr(err, "sqlstate", None) == "55P03" for err in (exc, exc.__cause__))


@dataclass
class Retries:
    """The retries of one run, shared with the report (the sampling thread reads it)."""

    tries: int = 5
    base_delay: float = 0.5
    lock_timeout: str = "2000ms"
    statement_timeout: str = "60000ms"
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.events)

    def record(self, statement: str, attempt: int, waited_ms: float) -> None:
        short = redact(" ".join(statement.split()))[:160]
        with self._lock:
            self.events.append({"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                                "statement": short, "attempt": attempt, "waited_ms": round(waited_ms, 1)})
        log.warning("lock wait timed out (try %d of %d), retrying: %s", attempt, self.tries, short)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(event) for event in self.events]


def _timeouts(cursor: Any, lock: str, statement: str) -> contextlib.AbstractContextManager[None]:
    return session_settings.for_one_statement(cursor, {"lock_timeout": lock, "statement_timeout": statement})


class RetryingEditorMixin:
    """Placed between django-pg-zero-downtime-migrations' mixin and Django's PostgreSQL editor."""

    kit_retries: Retries = Retries()
    kit_gate: Any = None  # a ReplicaGate: waits before a statement while a replica lags too far
    kit_build_memory_kb: int = 0  # INDEX_BUILD_MEMORY: build_memory.py
    collect_sql: bool
    connection: Any

    def execute(self, sql: Any, params: Any = ()) -> None:
        parent = super()
        text = str(sql)
        kind = PLAIN if self.collect_sql else statement_kind(text)
        if kind == PLAIN:
            return parent.execute(sql, params)  # type: ignore[misc]
        retries = self.kit_retries
        if self.kit_gate is not None:
            self.kit_gate.wait()
        if kind == WAITS:
            with self.connection.cursor() as cursor, _timeouts(cursor, "0", "0"), \
                    build_memory.enough_for_validation(cursor, text, self.kit_build_memory_kb):
                return parent.execute(sql, params)  # type: ignore[misc]
        attempt = 1
        while True:
            started = time.monotonic()
            try:
                with self.connection.cursor() as cursor, _timeouts(
                    cursor, retries.lock_timeout, retries.statement_timeout
                ), self._savepoint():
                    return parent.execute(sql, params)  # type: ignore[misc]
            except Exception as exc:
                if not is_lock_timeout(exc) or attempt >= retries.tries:
                    raise
                retries.record(text, attempt, (time.monotonic() - started) * 1000)
            time.sleep(delay(attempt, retries.base_delay))
            attempt += 1

    def _savepoint(self) -> contextlib.AbstractContextManager[Any]:
        """Inside a transaction (a RunPython's), a savepoint, so a timed-out try can be undone."""
        if self.connection.in_atomic_block:
            return transaction.atomic(using=self.connection.alias)
        return contextlib.nullcontext()
