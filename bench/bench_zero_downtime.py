"""The application's longest stalls while the demo's release runs: plain migrate, the library's
engine, and zero-downtime, on the same database, in the same run. Run by hand:

    .venv/bin/python bench/bench_zero_downtime.py --runs 5              # 2M and 8M rows, 5 runs each
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
  kit_no_verify   the same with --no-verify: the migration alone, without verify-data's scans

`--no-backup` for the kit because the others take none (pg_dump's ACCESS SHARE blocks no writer).
Writes bench/results/zero_downtime.md.
"""

from __future__ import annotations

import argparse
import json
import os
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

from bench import zd_report, zd_stalls  # noqa: E402
from devtools.pg_server import Server, create_database, drop_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "zero_downtime.md"
EXAMPLE = REPO / "example"
TABLES = ["medications_doselog", "medguard_notifications_notification", "users_user",
          "medications_medication"]
CONTROL = "medications_prescription"  # the release does not touch it: its stalls are the machine's noise
DOSELOG_SHARE = 0.815  # seed_demo --scale N puts about this share of N rows in medications_doselog
ARMS = zd_report.ARMS


def env_for(server: Server, dbname: str, work: Path, settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(dbname))
    env.update(DJANGO_SETTINGS_MODULE=settings, DJANGO_PROJECT_DIR=str(EXAMPLE), PM_PYTHON=sys.executable,
               PM_WORKDIR=str(work), PYTHONPATH=f"{REPO}:{EXAMPLE}")
    return env


def command(arm: str) -> tuple[list[str], str]:
    if arm in ("kit", "kit_no_verify"):
        skip = ["--no-verify"] if arm == "kit_no_verify" else []
        argv = [str(REPO / "production_migrate.sh"), "zero-downtime", "--allow-unsafe", "--no-backup"]
        return [*argv, *skip], "medguard_backend.settings.production"
    settings = "bench.zd_library_settings" if arm == "library" else "medguard_backend.settings.production"
    return [sys.executable, str(EXAMPLE / "manage.py"), "migrate", "--no-input"], settings


def one_run(server: Server, template: str, arm: str, work: Path) -> dict[str, Any]:
    dbname = f"zd_{arm}_{uuid.uuid4().hex[:6]}"
    create_database(server, dbname, template=template)
    settle(server, dbname)
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
    for message, first in loaded["errors"].items():
        print(f"    {arm}: application error at +{first - start:.2f}s: {message}", flush=True)
    drop_database(server, dbname)
    return {"arm": arm, "seconds": end - start, **zd_stalls.measure(loaded["series"], start, end, CONTROL),
            "kit_line": next((line for line in done.stdout.splitlines()
                              if line.startswith("Application stalls")), "")}


def settle(server: Server, dbname: str) -> None:
    """Finish the checkpoint the copy started: CREATE DATABASE ... TEMPLATE writes the whole database
    to the WAL (PostgreSQL 15+), which starts a checkpoint spread over minutes whose final fsyncs stall
    every commit for 100-400 ms, inside whichever command happens to be running then."""
    import psycopg

    with psycopg.connect(**_conninfo(server, dbname), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000])
    parser.add_argument("--runs", type=int, default=3)
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
    zd_report.write(RESULTS, results, sizes, args.runs)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
