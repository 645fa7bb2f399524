"""The two pg_dump tiers at scale: backup and restore wall time, kit against plain tools. By hand:

    .venv/bin/python bench/bench_backup_tiers.py                       # 10M-row seed, writes results
    .venv/bin/python bench/bench_backup_tiers.py --scale 200000 --no-write

Starts a throwaway PostgreSQL (fsync on) in a temporary directory, seeds the demo database with
`manage.py seed_demo --scale N`, then times, in the same run:

    backup, custom tier      plain  pg_dump -Fc -Z9 -f FILE
                             kit    ./production_migrate.sh backup    (MIGRATION_KIT default)
    backup, directory tier   plain  pg_dump -Fd -Z9 -j2 -f DIR
                             kit    ./production_migrate.sh backup    (BACKUP_FORMAT "directory",
                                                                       BACKUP_JOBS 2)
    restore, each tier       plain  createdb + pg_restore -j2 -d NEW FILE|DIR
                             kit    python rollback_manager.py rollback NAME --yes
                                    (full-read validation, a new database shaped like the live one,
                                    pg_restore -j2, ANALYZE, exact row counts, the swap)

Each is a whole process, wall clock, start to exit. Every kit figure is given as a ratio against
the plain command with the same options; the tiers against each other too. Then an extrapolation
to 100 GB of database (pg_database_size) under the stated assumption that throughput stays what
it was here (time grows linearly with size). Writes bench/results/backup_tiers.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.pg_server import Server, create_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "backup_tiers.md"
DB = "bench_tiers"
SETTINGS = "medguard_backend.settings.production"
DIR_SETTINGS = "bench_tier_directory"
GB100 = 100e9


def kit_env(server: Server, work: Path, settings: str, extra_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(DB))
    env.update(
        DJANGO_SETTINGS_MODULE=settings,
        DJANGO_PROJECT_DIR=str(REPO / "example"),
        PM_PYTHON=sys.executable,
        PM_WORKDIR=str(work),
        PYTHONPATH=f"{REPO}:{extra_path}",
    )
    return env


def pg_env(server: Server, dbname: str = DB) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PGHOST="127.0.0.1", PGPORT=str(server.port), PGUSER="postgres", PGPASSWORD=server.password,
               PGDATABASE=dbname)
    return env


def client_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's waited-for children: the client
    tools and the kit, not the server (whose backends are not our children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed ({result.returncode}): {result.stderr}")
    return seconds


def psql(server: Server, sql: str, dbname: str = "postgres") -> str:
    return subprocess.run(["psql", "-Atc", sql], env=pg_env(server, dbname), capture_output=True, text=True,
                          check=True).stdout.strip()


def drop_side_databases(server: Server) -> None:
    for name in psql(server, f"SELECT datname FROM pg_database WHERE datname LIKE '{DB}\\_\\_%'").split():
        psql(server, f'DROP DATABASE "{name}" WITH (FORCE)')


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the results, do not write the file")
    args = parser.parse_args(argv)
    jobs = args.jobs

    root = Path(tempfile.mkdtemp(prefix="bench_tiers_"))
    server = Server(root / "pg", fast=False)
    server.start()
    times: dict[str, list[float]] = {}
    loads: dict[str, list[float]] = {}  # the 1-minute load average when each step ended
    cpus: dict[str, list[float]] = {}  # client CPU seconds of each step
    sizes: dict[str, int] = {}
    try:
        extra = root / "settings"
        extra.mkdir()
        (extra / f"{DIR_SETTINGS}.py").write_text(
            f"from {SETTINGS} import *  # noqa: F403\nfrom {SETTINGS} import MIGRATION_KIT\n"
            f"MIGRATION_KIT = {{**MIGRATION_KIT, 'BACKUP_FORMAT': 'directory', 'BACKUP_JOBS': {jobs}}}\n"
        )
        work = {"custom": root / "work custom", "directory": root / "work directory"}
        env = {
            "custom": kit_env(server, work["custom"], SETTINGS, extra),
            "directory": kit_env(server, work["directory"], DIR_SETTINGS, extra),
        }
        for path in work.values():
            path.mkdir()
        create_database(server, DB)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "example" / "manage.py"), "seed_demo", "--scale", str(args.scale)],
            env=env["custom"], cwd=root, check=True, capture_output=True, text=True,
        )
        seed_seconds = time.perf_counter() - t0
        psql(server, "VACUUM ANALYZE", DB)
        db_size = int(psql(server, f"SELECT pg_database_size('{DB}')"))
        rows = int(psql(server, "SELECT sum(n_live_tup) FROM pg_stat_user_tables", DB))
        plain = {"custom": root / "plain.dump", "directory": root / "plain.dir"}
        dump_opts = {"custom": ["-Fc", "-Z9"], "directory": ["-Fd", "-Z9", f"-j{jobs}"]}

        cpu_mark = [client_cpu()]

        def add(key: str, seconds: float) -> None:
            times.setdefault(key, []).append(seconds)
            loads.setdefault(key, []).append(os.getloadavg()[0])
            now = client_cpu()
            cpus.setdefault(key, []).append(now - cpu_mark[0])
            cpu_mark[0] = now
            print(f"{key}: {seconds:.2f}s cpu {cpus[key][-1]:.1f}s load {loads[key][-1]:.1f}", flush=True)

        for run in range(args.runs):
            for tier in ("custom", "directory"):
                order = ("plain", "kit") if run % 2 == 0 else ("kit", "plain")
                for which in order:
                    cpu_mark[0] = client_cpu()
                    if which == "plain":
                        shutil.rmtree(plain[tier], ignore_errors=True)
                        plain[tier].unlink(missing_ok=True)
                        add(f"dump plain {tier}", timed(
                            ["pg_dump", *dump_opts[tier], "-f", str(plain[tier])], pg_env(server), root))
                        sizes[f"plain {tier}"] = size_of(plain[tier])
                    else:
                        shutil.rmtree(work[tier] / "backups", ignore_errors=True)
                        shutil.rmtree(work[tier] / "rollback_scripts", ignore_errors=True)
                        add(f"dump kit {tier}", timed(
                            [str(REPO / "production_migrate.sh"), "backup"], env[tier], work[tier]))
                        (kit_dump,) = [p for p in (work[tier] / "backups").iterdir() if p.suffix != ".json"]
                        sizes[f"kit {tier}"] = size_of(kit_dump)
                for which in order:
                    if which == "plain":
                        psql(server, "DROP DATABASE IF EXISTS bench_restored")
                        cpu_mark[0] = client_cpu()
                        start = time.perf_counter()
                        psql(server, "CREATE DATABASE bench_restored")
                        timed(["pg_restore", f"-j{jobs}", "-d", "bench_restored", str(plain[tier])],
                              pg_env(server, "bench_restored"), root)
                        add(f"restore plain {tier}", time.perf_counter() - start)
                        psql(server, "DROP DATABASE bench_restored")
                    else:
                        (kit_dump,) = [p for p in (work[tier] / "backups").iterdir() if p.suffix != ".json"]
                        cpu_mark[0] = client_cpu()
                        manager = [sys.executable, str(REPO / "rollback_manager.py")]
                        add(f"restore kit {tier}", timed(
                            [*manager, "rollback", kit_dump.name, "--yes"], env[tier], work[tier]))
                        drop_side_databases(server)
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)

    med = {key: statistics.median(values) for key, values in times.items()}

    def row(what: str, command: str, key: str, against: str = "") -> str:
        ratio = f"**{med[key] / med[against]:.2f}**" if against else ""
        mb_s = db_size / med[key] / 1e6
        hours = GB100 / (db_size / med[key]) / 3600
        runs = ", ".join(f"{v:.1f}" for v in times[key])
        load = ", ".join(f"{v:.1f}" for v in loads[key])
        cpu = statistics.median(cpus[key])
        cpu_ratio = f" ({cpu / statistics.median(cpus[against]):.2f})" if against else ""
        return (f"| {what} | `{command}` | {med[key]:.1f} | {runs} | {ratio} | {cpu:.1f}{cpu_ratio} | "
                f"{mb_s:.1f} | {hours:.2f} h | {load} |")

    pd = f"pg_dump -Fd -Z9 -j{jobs}"
    pr = f"pg_restore -j{jobs}"
    table = "\n".join([
        row("backup, custom, plain", "pg_dump -Fc -Z9 -f FILE", "dump plain custom"),
        row("backup, custom, kit", "./production_migrate.sh backup", "dump kit custom", "dump plain custom"),
        row("backup, directory, plain", f"{pd} -f DIR", "dump plain directory"),
        row("backup, directory, kit", "./production_migrate.sh backup (BACKUP_FORMAT directory)",
            "dump kit directory", "dump plain directory"),
        row("restore, custom, plain", f"createdb; {pr} -d NEW FILE", "restore plain custom"),
        row("restore, custom, kit", "rollback_manager.py rollback FILE --yes", "restore kit custom",
            "restore plain custom"),
        row("restore, directory, plain", f"createdb; {pr} -d NEW DIR", "restore plain directory"),
        row("restore, directory, kit", "rollback_manager.py rollback DIR --yes", "restore kit directory",
            "restore plain directory"),
    ])
    speed = med["dump kit custom"] / med["dump kit directory"]
    speed_plain = med["dump plain custom"] / med["dump plain directory"]
    restore_speed = med["restore kit custom"] / med["restore kit directory"]
    command = "bench/bench_backup_tiers.py" + "".join(
        f" --{k} {v}" for k, v in (("scale", args.scale), ("runs", args.runs), ("jobs", jobs)))
    how_many = (f"Medians of {args.runs} runs, alternating plain/kit order." if args.runs > 1
                else "One run of each, plain first.")
    text = f"""# Backup tiers at scale: custom (`pg_dump -Fc -Z9`) and directory (`pg_dump -Fd -Z9 -j{jobs}`)

Measured by `bench/bench_backup_tiers.py` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
{platform.node()} ({os.cpu_count()} CPUs, {platform.platform()}), PostgreSQL client
{subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout.strip()}, a throwaway
server with fsync on, on the same machine as the tools (they share its {os.cpu_count()} CPUs).
{how_many}

Database: demo seeded with `manage.py seed_demo --scale {args.scale}` in {seed_seconds:.1f}s:
{rows:,} rows, {db_size:,} bytes (pg_database_size, {db_size / 1e9:.2f} GB).

| figure | command | wall (s) | runs (s) | kit / plain | client CPU (s) (kit / plain) | MB/s of database | 100 GB at that rate | load |
|---|---|---|---|---|---|---|---|---|
{table}

"load" is the 1-minute load average when the step ended: other work on the machine (it is shared)
competes for its {os.cpu_count()} CPUs, and a load above {os.cpu_count()} means a step was slowed by it.
"client CPU" is the user + system CPU time of the step's client processes (pg_dump and its
workers, pg_restore, psql, and for the kit bash, Python and its own pg_restore readers), not the
server's: it does not depend on what else runs on the machine, so its kit / plain ratio is the
steadier measure of what the kit adds on the client side.

Sizes: custom {sizes["kit custom"]:,} bytes (plain {sizes["plain custom"]:,}); directory
{sizes["kit directory"]:,} bytes (plain {sizes["plain directory"]:,}); both at gzip level 9.

- The directory tier's backup is **{speed:.2f}x** as fast as the custom tier's with the kit
  ({speed_plain:.2f}x with the plain tools); its rollback is {restore_speed:.2f}x as fast.
- What the kit adds to a backup: snapshot export and row counts in the snapshot, the full read
  (custom: fed the growing file while pg_dump writes; directory: {jobs} `pg_restore -f /dev/null`
  readers after the dump, each on part of the data files), SHA-256, `pg_restore --list`, fsync,
  the rollback script and metadata, plus starting bash, Python and Django.
- What the kit adds to a restore: the full-read validation of the backup first, a new database
  shaped like the live one, ANALYZE and exact row counts of every table, the swap (the plain
  figure is `createdb` and `pg_restore` alone, into an empty database, no checks).

**Extrapolation to 100 GB** (the last column): 100 GB of `pg_database_size` divided by the
throughput measured here (database bytes per wall second). The assumption: throughput stays
constant as the database grows, i.e. time scales linearly with size, on this machine ({os.cpu_count()} CPUs,
local disk, server and tools on one host). It ignores what changes at that size: data that no
longer fits in RAM (here the whole database is in the page cache), index builds that spill to
disk during the restore, tables bigger than the rest combined (a directory dump parallelises per
table: one huge table is written by one worker), and a server on another host (the tools' CPU
no longer competes with the server's).

Reproduce: `.venv/bin/python {command}`.
"""  # noqa: E501
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
