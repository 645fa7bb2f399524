"""The application, as seen by the zero-downtime benchmark: a reader and a writer per table.

    python bench/zd_load.py OUT.json TABLE [TABLE ...]   # runs until SIGTERM, then writes OUT.json

Each thread has its own connection and runs single-row statements by primary key, pausing
PAUSE_S between them (about 160 statements a second per thread when nothing stalls): the reader
`SELECT * FROM t WHERE id = $1`, the writer `UPDATE t SET id = id WHERE id = $1` (a real row
write, nothing changed). Every statement's start (epoch seconds) and latency go to OUT.json, so
the benchmark can take the longest stall inside the window its command ran in.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from typing import Any

import psycopg
from psycopg import sql

PAUSE_S = 0.005
stop = threading.Event()
errors: dict[str, float] = {}  # first time each distinct error was seen


def connect() -> psycopg.Connection[Any]:
    return psycopg.connect(host=os.environ["DB_HOST"], port=os.environ["DB_PORT"], user=os.environ["DB_USER"],
                           password=os.environ["DB_PASSWORD"], dbname=os.environ["DB_NAME"], autocommit=True,
                           prepare_threshold=None)  # as Django: no server-side prepared statements


def worker(table: str, kind: str, out: list[tuple[float, float, bool]]) -> None:
    with connect() as conn:
        top = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(sql.Identifier(table))).fetchone()[0] or 1
        statement = (sql.SQL("SELECT * FROM {} WHERE id = %s") if kind == "read"
                     else sql.SQL("UPDATE {} SET id = id WHERE id = %s")).format(sql.Identifier(table))
        while not stop.is_set():
            started = time.time()
            ok = True
            try:
                conn.execute(statement, (random.randint(1, top),)).fetchall() if kind == "read" else \
                    conn.execute(statement, (random.randint(1, top),))
            except psycopg.Error as exc:
                ok = False  # an error the application would have seen: kept, with its time
                errors.setdefault(f"{kind} {table}: {str(exc).splitlines()[0]}", started)
            out.append((started, time.time() - started, ok))
            time.sleep(PAUSE_S)


def main() -> None:
    out_path, tables = sys.argv[1], sys.argv[2:]
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    results: dict[str, list[tuple[float, float, bool]]] = {}
    threads = []
    for table in tables:
        for kind in ("read", "write"):
            results[f"{kind} {table}"] = series = []
            thread = threading.Thread(target=worker, args=(table, kind, series), daemon=True)
            thread.start()
            threads.append(thread)
    print("ready", flush=True)
    while not stop.is_set():
        stop.wait(0.2)
    for thread in threads:
        thread.join(60)
    with open(out_path, "w") as handle:
        json.dump({"series": results, "errors": errors}, handle)


if __name__ == "__main__":
    main()
