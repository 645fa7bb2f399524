"""The application's longest stalls while the demo's release runs: plain migrate, the library's
engine, and zero-downtime, on the same database, in the same run. Run by hand:

    .venv/bin/python bench/bench_zero_downtime.py                       # 2M and 8M rows, 1 run each
    .venv/bin/python bench/bench_zero_downtime.py --rows 2000000 --runs 2

A throwaway PostgreSQL (fsync on, as in production) in a temporary directory. For each size the
demo is seeded (`manage.py seed_demo --scale N`, N chosen so that medications_doselog, the table
the release indexes, holds about the size asked for), VACUUM ANALYZE, and kept as a template;
each command runs on a fresh copy, while bench/zd_load.py (another process: a reader and a writer
per touched table, single-row statements by primary key, ~160 a second each) plays the
application. The stall figures are that process's own measurements: the longest statement of each
thread that started while the command ran, not the kit's probe.

  plain    python manage.py migrate --no-input
  library  the same with ENGINE django_zero_downtime_migrations.backends.postgres and the library's
           recommended settings (lock and statement timeout 2s, flexible statement timeout)
  kit      ./production_migrate.sh zero-downtime --allow-unsafe --no-backup

`--no-backup` for the kit because the others take none (pg_dump's ACCESS SHARE blocks no writer).
Writes bench/results/zero_downtime.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.pg_server import Server, create_database, drop_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "zero_downtime.md"
EXAMPLE = REPO / "example"
TABLES = ["medications_doselog", "medguard_notifications_notification", "users_user",
          "medications_medication"]
CONTROL = "medications_prescription"  # the release does not touch it: its stalls are the machine's noise
DOSELOG_SHARE = 0.815  # seed_demo --scale N puts about this share of N rows in medications_doselog
ARMS = ("plain", "library", "kit")
TARGET_MS = 100.0


def env_for(server: Server, dbname: str, work: Path, settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(dbname))
    env.update(DJANGO_SETTINGS_MODULE=settings, DJANGO_PROJECT_DIR=str(EXAMPLE), PM_PYTHON=sys.executable,
               PM_WORKDIR=str(work), PYTHONPATH=f"{REPO}:{EXAMPLE}")
    return env


def command(arm: str) -> tuple[list[str], str]:
    if arm == "kit":
        return ([str(REPO / "production_migrate.sh"), "zero-downtime", "--allow-unsafe", "--no-backup"],
                "medguard_backend.settings.production")
    settings = "bench.zd_library_settings" if arm == "library" else "medguard_backend.settings.production"
    return [sys.executable, str(EXAMPLE / "manage.py"), "migrate", "--no-input"], settings


def stalls(load: dict[str, list[list[Any]]], start: float, end: float) -> dict[str, dict[str, float]]:
    """Per table: the longest read and write that started in [start, end], and failed statements."""
    found: dict[str, dict[str, float]] = {}
    for key, series in load.items():
        kind, table = key.split(" ", 1)
        inside = [(latency, ok) for started, latency, ok in series if start <= started <= end]
        entry = found.setdefault(table, {"read_ms": 0.0, "write_ms": 0.0, "errors": 0, "statements": 0})
        entry[f"{kind}_ms"] = max([latency * 1000 for latency, _ok in inside], default=0.0)
        entry["errors"] += sum(1 for _latency, ok in inside if not ok)
        entry["statements"] += len(inside)
    return found


def one_run(server: Server, template: str, arm: str, work: Path) -> dict[str, Any]:
    dbname = f"zd_{arm}_{uuid.uuid4().hex[:6]}"
    create_database(server, dbname, template=template)
    run_dir = work / dbname
    run_dir.mkdir()
    argv, settings = command(arm)
    env = env_for(server, dbname, run_dir, settings)
    out = run_dir / "load.json"
    loader = [sys.executable, str(REPO / "bench" / "zd_load.py"), str(out), *TABLES, CONTROL]
    load = subprocess.Popen(loader, env=env, stdout=subprocess.PIPE, text=True)
    assert load.stdout is not None and load.stdout.readline().strip() == "ready"
    time.sleep(2.0)
    start = time.time()
    done = subprocess.run(argv, env=env, cwd=run_dir, capture_output=True, text=True, check=False)
    end = time.time()
    time.sleep(1.0)
    load.send_signal(signal.SIGTERM)
    load.wait(120)
    if done.returncode != 0:
        raise SystemExit(f"{arm} failed ({done.returncode}): {done.stderr[-2000:]}")
    loaded = json.loads(out.read_text())
    measured = stalls(loaded["series"], start, end)
    for message, first in loaded["errors"].items():
        print(f"    {arm}: application error at +{first - start:.2f}s: {message}", flush=True)
    drop_database(server, dbname)
    noise = measured.pop(CONTROL)
    return {"arm": arm, "seconds": end - start, "tables": measured,
            "write_ms": max(t["write_ms"] for t in measured.values()),
            "read_ms": max(t["read_ms"] for t in measured.values()),
            "noise_ms": max(noise["write_ms"], noise["read_ms"]),
            "errors": sum(int(t["errors"]) for t in measured.values()),
            "kit_line": next((line for line in done.stdout.splitlines()
                              if line.startswith("Application stalls")), "")}


def seed(server: Server, rows: int, work: Path) -> tuple[str, int, float]:
    template = f"tpl_{rows}"
    create_database(server, template)
    scale = int(rows / DOSELOG_SHARE)
    started = time.monotonic()
    subprocess.run([sys.executable, str(EXAMPLE / "manage.py"), "seed_demo", "--scale", str(scale)],
                   check=True, env=env_for(server, template, work, "medguard_backend.settings.production"),
                   cwd=work, capture_output=True, text=True)
    seconds = time.monotonic() - started
    import psycopg

    with psycopg.connect(**_conninfo(server, template), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        count = conn.execute("SELECT count(*) FROM medications_doselog").fetchone()[0]
    return template, int(count), seconds


def _conninfo(server: Server, dbname: str) -> dict[str, Any]:
    env = server.env(dbname)
    return {"host": env["DB_HOST"], "port": env["DB_PORT"], "user": env["DB_USER"],
            "password": env["DB_PASSWORD"], "dbname": dbname}


def write(results: list[dict[str, Any]], sizes: dict[int, tuple[int, float]], runs: int) -> None:
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
        "The application is bench/zd_load.py in its own process: a reader (`SELECT` by primary key) and "
        "a writer (`UPDATE ... SET id = id` by primary key) per table the release touches, each ~160 "
        "statements a second when nothing stalls. A stall is the longest statement that started while "
        "the command ran, measured by that process, not by the kit's probe. The release: a foreign key "
        "added to notifications (referencing medications), an index on medications_doselog, two data "
        "migrations, a NOT NULL column with a default on users_user. `--no-backup` for the kit (the "
        "others take none). The same reader and writer run on medications_prescription, which the "
        "release does not touch: its longest statement is the machine's noise (the CPU the command "
        "shares), not a lock. With several runs, each figure is the worst run of its command.",
        "",
        "| doselog rows (seeded in) | command | wall time | longest write stall | longest read stall | "
        "untouched table's longest (noise) | failed statements | per table (write / read ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        rows, seeded = sizes[result["rows"]]
        per_table = "; ".join(f"{t.split('_', 1)[1]} {v['write_ms']:.0f} / {v['read_ms']:.0f}"
                              for t, v in result["tables"].items())
        lines.append(f"| {rows:,} ({seeded:.0f} s) | {result['arm']} | {result['seconds']:.2f} s | "
                     f"**{result['write_ms']:.0f} ms** | {result['read_ms']:.0f} ms | "
                     f"{result['noise_ms']:.0f} ms | {result['errors']} | "
                     f"{per_table} |")
    lines += ["", "## Verdict", ""]
    for rows in sizes:
        by_arm = {r["arm"]: r for r in results if r["rows"] == rows}
        kit, lib, plain = by_arm["kit"], by_arm["library"], by_arm["plain"]
        lines.append(
            f"- {sizes[rows][0]:,} rows: zero-downtime's longest writer stall {kit['write_ms']:.0f} ms "
            f"(target < {TARGET_MS:.0f} ms: {'met' if kit['write_ms'] < TARGET_MS else 'NOT met'}); "
            f"the library's {lib['write_ms']:.0f} ms "
            f"({'no worse' if kit['write_ms'] <= lib['write_ms'] else 'WORSE'}); plain "
            f"migrate's {plain['write_ms']:.0f} ms. Wall time: zero-downtime {kit['seconds']:.1f} s, "
            f"plain migrate {plain['seconds']:.1f} s ({kit['seconds'] / plain['seconds']:.2f}×). "
            "The kit's own probe said: "
            f"\"{kit['kit_line']}\"")
    if len(sizes) > 1:
        small, large = list(sizes)
        kit_ms = {r["rows"]: r["write_ms"] for r in results if r["arm"] == "kit"}
        lines.append(f"- From {sizes[small][0]:,} to {sizes[large][0]:,} rows zero-downtime's longest writer "
                     f"stall changed by {kit_ms[large] - kit_ms[small]:+.0f} ms.")
    RESULTS.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    sizes: dict[int, tuple[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_zd_") as tmp:
        work = Path(tmp)
        server = Server(work / "pg", fast=False)
        server.start()
        try:
            for rows in args.rows:
                template, count, seconds = seed(server, rows, work)
                sizes[rows] = (count, seconds)
                print(f"seeded {count:,} doselog rows in {seconds:.0f} s", flush=True)
                for run in range(args.runs):
                    order = ARMS if run % 2 == 0 else tuple(reversed(ARMS))
                    for arm in order:
                        result = one_run(server, template, arm, work) | {"rows": rows}
                        print(f"  {arm}: {result['seconds']:.2f} s, write {result['write_ms']:.0f} ms, "
                              f"read {result['read_ms']:.0f} ms", flush=True)
                        results.append(result)
                drop_database(server, template)
        finally:
            server.destroy()
    worst: dict[tuple[int, str], dict[str, Any]] = {}
    for result in results:  # several runs: the worst of each arm, as an operator would plan for
        key = (result["rows"], result["arm"])
        if key not in worst or result["write_ms"] > worst[key]["write_ms"]:
            worst[key] = result
    write([worst[k] for k in sorted(worst, key=lambda k: (k[0], ARMS.index(k[1])))], sizes, args.runs)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
