"""`rollback` against plain single-job pg_restore into an empty database. Run by hand:

    .venv/bin/python bench/bench_rollback.py              # scale 1,000,000, 3 runs of each
    .venv/bin/python bench/bench_rollback.py --scale 100000 --runs 5

Starts a throwaway PostgreSQL (fsync on, as in production) in a temporary directory, seeds
the demo with `manage.py seed_demo --scale N`, takes one backup with
`./production_migrate.sh backup`, then times, as whole commands (wall clock, start to exit):

    kit:    python rollback_manager.py rollback <backup> --yes
            (full-read validation, restore with pg_restore --jobs=2 into a new database,
             row counts + applied migrations verified, ANALYZE, swap; everything included)
    plain:  pg_restore -d <empty database> <backup>      (single job; createdb not timed)

The arms alternate (plain first on even runs). For reference it also times the pieces:
`pg_restore --jobs=2` alone, the full-read check (`pg_restore -f /dev/null`) and sha256.
Writes bench/results/rollback.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.pg_server import Server, create_database, drop_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rollback.md"
TARGET = 1.0
DB = "bench_rollback"


def env_for(server: Server, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(DB))
    env.update(
        DJANGO_SETTINGS_MODULE="medguard_backend.settings.production",
        DJANGO_PROJECT_DIR=str(REPO / "example"),
        PM_PYTHON=sys.executable,
        PM_WORKDIR=str(workdir),
        PYTHONPATH=str(REPO),
        PGHOST="127.0.0.1",
        PGPORT=str(server.port),
        PGUSER="postgres",
        PGPASSWORD=server.password,
    )
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds


def timed_lines(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, list[tuple[float, str]]]:
    """Wall time, and when (seconds from the start) each line of the command's stdout arrived."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines = [(time.perf_counter() - started, line.rstrip()) for line in proc.stdout]
    err = proc.stderr.read() if proc.stderr else ""
    code = proc.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{argv[:3]} failed ({code}): {err[-2000:]}")
    return seconds, lines


def side_databases(server: Server) -> list[str]:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=server.password,
                         dbname="postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (DB + "\\_\\_%",))
        return [r[0] for r in rows.fetchall()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-rollback-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o711)
        workdir = root / "work dir"
        workdir.mkdir()
        server = Server(root / "pg", fast=False)
        server.start()
        try:
            env = env_for(server, workdir)
            create_database(server, DB)
            seed_s = timed([sys.executable, str(REPO / "example" / "manage.py"), "seed_demo",
                            "--scale", str(args.scale)], env, workdir)
            backup_s = timed([str(REPO / "production_migrate.sh"), "backup"], env, workdir)
            [dump] = sorted((workdir / "backups").glob("*.sql"))
            size = dump.stat().st_size
            db_size = subprocess.run(["psql", "-Atc", f"SELECT pg_database_size('{DB}')"], env=env,
                                     capture_output=True, text=True, check=True).stdout.strip()
            timings: dict[str, list[float]] = {"plain": [], "kit": [], "j2": [], "fullread": [], "sha": []}
            phases: list[list[tuple[float, str]]] = []

            def plain() -> None:
                create_database(server, "bench_plain")
                timings["plain"].append(timed(["pg_restore", "-d", "bench_plain", str(dump)], env, workdir))
                drop_database(server, "bench_plain")

            def kit() -> None:
                seconds, steps = timed_lines([sys.executable, str(REPO / "rollback_manager.py"), "rollback",
                                              dump.name, "--yes"], env, workdir)
                timings["kit"].append(seconds)
                phases.append(steps)
                for name in side_databases(server):
                    drop_database(server, name)

            for run in range(args.runs):
                for arm in ((plain, kit) if run % 2 == 0 else (kit, plain)):
                    arm()
                create_database(server, "bench_j2")
                timings["j2"].append(timed(["pg_restore", "--jobs=2", "-d", "bench_j2", str(dump)],
                                           env, workdir))
                drop_database(server, "bench_j2")
                timings["fullread"].append(timed(["pg_restore", "-f", os.devnull, str(dump)], env, workdir))
                started = time.perf_counter()
                hashlib.sha256(dump.read_bytes()).hexdigest()
                timings["sha"].append(time.perf_counter() - started)
                print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in timings.items()))
            version = subprocess.run(["psql", "-Atc", "SHOW server_version"], env=env, capture_output=True,
                                     text=True, check=True).stdout.strip()
        finally:
            server.destroy()

    med = {k: statistics.median(v) for k, v in timings.items()}
    ratio = med["kit"] / med["plain"]

    def cell(key: str) -> str:
        values = timings[key]
        return f"**{med[key]:.2f} s** ({min(values):.2f}–{max(values):.2f})"

    lines = [
        "# rollback vs plain pg_restore",
        "",
        f"Written by `bench/bench_rollback.py --scale {args.scale} --runs {args.runs}`. "
        f"PostgreSQL {version} (throwaway cluster, fsync on), {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}.",
        "",
        f"Database seeded with `python example/manage.py seed_demo --scale {args.scale}` "
        f"({int(db_size):,} bytes, seeded in {seed_s:.1f} s); one backup taken with "
        f"`./production_migrate.sh backup` ({size:,} bytes, {backup_s:.1f} s). Median (min–max) of "
        f"{args.runs} runs; the two arms alternate.",
        "",
        "| What | Command | Wall |",
        "|---|---|---|",
        f"| kit rollback, everything included | `python rollback_manager.py rollback {dump.name} --yes` "
        f"| {cell('kit')} |",
        f"| plain restore, single job, into an empty database | `createdb r; pg_restore -d r {dump.name}` "
        f"(createdb not timed) | {cell('plain')} |",
        f"| **ratio kit / plain** (target ≤ {TARGET:.2f}) | | **{ratio:.2f}** |",
        f"| for reference: restore with 2 jobs alone | `pg_restore --jobs=2 -d r {dump.name}` "
        f"| {cell('j2')} |",
        f"| for reference: the full-read check | `pg_restore -f /dev/null {dump.name}` "
        f"| {cell('fullread')} |",
        f"| for reference: SHA-256 (hashlib, file cached) | | {cell('sha')} |",
        "",
        "The kit's wall time includes Python and Django start-up, the deploy lock, the full-read "
        "validation (SHA-256 + `pg_restore -f /dev/null`), CREATE DATABASE, `pg_restore --jobs=2`, "
        "exact row counts of every table and the applied migrations compared with the metadata, "
        "ANALYZE of the new database, and the swap (block logins, end sessions, two renames).",
        "",
        "Every run's figures (s):",
        "",
        "| run | " + " | ".join(timings) + " |",
        "|---|" + "---|" * len(timings),
    ]
    for i in range(args.runs):
        lines.append(f"| {i + 1} | " + " | ".join(f"{timings[k][i]:.2f}" for k in timings) + " |")
    lines += [
        "",
        "Where the kit's time goes (last run; seconds from the start when each line was printed):",
        "",
        "```",
        *(f"{at:6.2f}  {text}" for at, text in phases[-1]),
        f"{timings['kit'][-1]:6.2f}  (exit)",
        "```",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
