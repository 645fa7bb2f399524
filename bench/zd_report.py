"""bench/results/zero_downtime.md from bench_zero_downtime.py's runs."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

ARMS = ("plain", "library", "kit", "kit_no_verify")
LABELS = {"kit": "kit (zero-downtime)", "kit_no_verify": "kit --no-verify"}
TARGET_MS = 100.0

INTRO = (
    "The application is bench/zd_load.py in its own process: a reader (`SELECT` by primary key) and "
    "a writer (`UPDATE ... SET id = id` by primary key) per table the release touches, each ~160 "
    "statements a second when nothing stalls. A stall is the longest statement that started while "
    "the command ran, measured by that process, not by the kit's probe. The release: a foreign key "
    "added to notifications (referencing medications), an index on medications_doselog, two data "
    "migrations, a NOT NULL column with a default on users_user. `--no-backup` for the kit (the "
    "others take none); the kit's verify-data before and after migrating is in its time.\n\n"
    "The same reader and writer run on medications_prescription, which the release does not touch "
    "(the control). Its longest statement is the machine's noise: with nothing running at all, "
    "this 2-CPU virtual machine pauses every thread of the load at once for 20 to 35 ms every few "
    "seconds, and more when a command shares the CPU. So the longest stall of a run grows with how "
    "long the run lasts, whatever locks it takes. The **lock stall** takes the noise out: for each "
    "statement on a touched table, its latency minus the longest control statement that ran at the "
    "same time (bench/zd_stalls.py); what is left is the wait on that table alone, the part a lock "
    "can cause. Not all of the control's waits are the machine's: at 8 million rows the index build "
    "writes a few hundred MB of WAL, and every commit, the control's included, can wait behind it for "
    "the WAL to be written and flushed (`LWLock WALWrite`, `IO WALSync` in pg_stat_activity, 190-450 ms "
    "in 6 of 20 builds by hand, whatever maintenance_work_mem): a cost of building the index that "
    "plain migrate, the library and the kit share, and that the lock stall leaves out.\n\n"
    "Each command ran the given number of times on a fresh copy of the seeded database, in "
    "alternating order; the tables give the worst and the median of the runs' longest stalls. "
    "The copy (`CREATE DATABASE ... TEMPLATE`, which PostgreSQL 15+ writes through the WAL) starts a "
    "checkpoint spread over minutes; its closing fsyncs stalled every commit, the control's "
    "included, for 100 to 400 ms inside whichever command was running. A `CHECKPOINT` after the copy "
    "finishes it before the load starts, the same for every command."
)


def _ms(values: list[float]) -> str:
    return f"{max(values):.0f} / {statistics.median(values):.0f}"


def _worst(runs: list[dict[str, Any]], name: str) -> float:
    return max(float(r[name]) for r in runs)


def _median(runs: list[dict[str, Any]], name: str) -> float:
    return statistics.median(float(r[name]) for r in runs)


def _by_arm(results: list[dict[str, Any]], rows: int) -> dict[str, list[dict[str, Any]]]:
    return {arm: [r for r in results if r["rows"] == rows and r["arm"] == arm] for arm in ARMS}


def _summary_rows(results: list[dict[str, Any]], sizes: dict[int, tuple[int, float]]) -> list[str]:
    lines = [
        "| doselog rows (seeded in) | command | runs | wall time (median) | longest write stall "
        "(worst / median) | longest read stall (worst / median) | noise: control's longest (worst / median) "
        "| lock stall, write / read (worst) | failed statements |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rows, (count, seeded) in sizes.items():
        for arm, runs in _by_arm(results, rows).items():
            if not runs:
                continue
            lines.append(
                f"| {count:,} ({seeded:.0f} s) | {LABELS.get(arm, arm)} | {len(runs)} | "
                f"{statistics.median(r['seconds'] for r in runs):.2f} s | "
                f"**{_ms([r['write_ms'] for r in runs])} ms** | {_ms([r['read_ms'] for r in runs])} ms | "
                f"{_ms([r['noise_ms'] for r in runs])} ms | "
                f"{_worst(runs, 'write_lock_ms'):.0f} / {_worst(runs, 'read_lock_ms'):.0f} ms | "
                f"{sum(r['errors'] for r in runs)} |")
    return lines


def _run_rows(results: list[dict[str, Any]], sizes: dict[int, tuple[int, float]]) -> list[str]:
    lines = ["| doselog rows | command | run | wall time | write / read ms | noise ms "
             "| lock stall write / read ms | per table: write / read ms (lock stall write / read) |",
             "|---|---|---|---|---|---|---|---|"]
    for rows, (count, _seeded) in sizes.items():
        for arm, runs in _by_arm(results, rows).items():
            for number, r in enumerate(runs, 1):
                per_table = "; ".join(
                    f"{t.split('_', 1)[1]} {v['write_ms']:.0f} / {v['read_ms']:.0f} "
                    f"({v['write_lock_ms']:.0f} / {v['read_lock_ms']:.0f})" for t, v in r["tables"].items())
                lines.append(f"| {count:,} | {LABELS.get(arm, arm)} | {number} | {r['seconds']:.2f} s | "
                             f"{r['write_ms']:.0f} / {r['read_ms']:.0f} | {r['noise_ms']:.0f} | "
                             f"{r['write_lock_ms']:.0f} / {r['read_lock_ms']:.0f} | {per_table} |")
    return lines


def _compare(kit: list[float], lib: list[float], how: str) -> str:
    k, b = (max(kit), max(lib)) if how == "worst" else (statistics.median(kit), statistics.median(lib))
    k, b = round(k), round(b)  # the load times each statement to the millisecond, no finer
    return f"{how} {k} ms against the library's {b} ms ({'no worse' if k <= b else 'WORSE'})"


def _kit_line(count: int, arm: str, kit: list[dict[str, Any]], lib: list[dict[str, Any]],
              plain: list[dict[str, Any]]) -> str:
    write = [r["write_ms"] for r in kit]
    lock = [r["write_lock_ms"] for r in kit]
    worst = max(kit, key=lambda r: r["write_ms"])
    return (
        f"- **{count:,} rows, {LABELS[arm]}.** Longest writer stall: worst {max(write):.0f} ms (target "
        f"< {TARGET_MS:.0f} ms: {'met' if max(write) < TARGET_MS else 'NOT met'}); against the library: "
        f"{_compare(write, [r['write_ms'] for r in lib], 'median')}, "
        f"{_compare(write, [r['write_ms'] for r in lib], 'worst')}. Lock stall (noise taken out): "
        f"{_compare(lock, [r['write_lock_ms'] for r in lib], 'worst')}. Plain migrate: worst "
        f"{_worst(plain, 'write_ms'):.0f} ms, lock stall {_worst(plain, 'write_lock_ms'):.0f} ms. "
        f"Wall time (medians): {_median(kit, 'seconds'):.1f} s, the library {_median(lib, 'seconds'):.1f} s, "
        f"plain migrate {_median(plain, 'seconds'):.1f} s. The kit's own probe, in its worst run: "
        f"\"{worst['kit_line']}\"")


def _verdict(results: list[dict[str, Any]], sizes: dict[int, tuple[int, float]]) -> list[str]:
    lines = []
    for rows, (count, _seeded) in sizes.items():
        arms = _by_arm(results, rows)
        lines += [_kit_line(count, arm, arms[arm], arms["library"], arms["plain"])
                  for arm in LABELS if arms[arm] and arms["library"] and arms["plain"]]
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        for arm in LABELS:
            kit = {rows: _by_arm(results, rows)[arm] for rows in (small, large)}
            if not (kit[small] and kit[large]):
                continue

            def change(name: str, pick: Any, kit: dict[int, list[dict[str, Any]]] = kit) -> str:
                return f"{pick(kit[large], name) - pick(kit[small], name):+.0f} ms"
            lines.append(
                f"- From {sizes[small][0]:,} to {sizes[large][0]:,} rows, {LABELS[arm]}'s longest writer "
                f"stall changed by {change('write_ms', _median)} (medians), {change('write_ms', _worst)} "
                f"(worst), and its lock stall by {change('write_lock_ms', _worst)} (worst).")
    return lines


def write(path: Path, results: list[dict[str, Any]], sizes: dict[int, tuple[int, float]], runs: int) -> None:
    import django

    lines = [
        "# The application's longest stalls during the demo's release",
        "",
        f"Written by `.venv/bin/python bench/bench_zero_downtime.py --rows {' '.join(map(str, sizes))} "
        f"--runs {runs}` (all figures from one run of it).",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Django {django.get_version()}, load average {os.getloadavg()[0]:.1f} at the end. PostgreSQL from "
        "devtools/pg_server.py (throwaway cluster on loopback, fsync on, default settings).",
        "",
        INTRO,
        "",
        *_summary_rows(results, sizes),
        "",
        "## Verdict",
        "",
        *_verdict(results, sizes),
        "",
        "## Every run",
        "",
        *_run_rows(results, sizes),
    ]
    path.write_text("\n".join(lines) + "\n")
