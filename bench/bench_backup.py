"""`backup` against plain `pg_dump -Fc -Z9`, and shallow `validate-backup` on a ~100+ MB dump. By hand:

    .venv/bin/python bench/bench_backup.py                 # 1M-row seed, 3 runs each, writes results
    .venv/bin/python bench/bench_backup.py --scale 200000 --runs 2

Starts a throwaway PostgreSQL (fsync on: fast=False) in a temporary directory, seeds the demo
database with `manage.py seed_demo --scale N`, then in the same run, alternating the order:

    plain: pg_dump -Fc -Z9 -f FILE                     (the client tool alone)
    kit:   ./production_migrate.sh backup              (whole command: shell, Python, Django,
                                                        snapshot counts, full read, SHA-256,
                                                        metadata, rollback script)

Both are timed as whole processes (wall clock, start to exit). The kit's own `Duration:` line
(inside Python, from the tools check to the metadata) is reported too.

Then a -Z0 dump of the same database (well over 100 MB) gets metadata made with the kit's
own functions, and `rollback_manager.py validate-backup` (shallow) is timed on it, whole
command and in-process (`validate.validate`).

Writes bench/results/backup.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
from migration_tools.backup import metadata, validate  # noqa: E402

RESULTS = REPO / "bench" / "results" / "backup.md"
DB = "bench_backup"
SETTINGS = "medguard_backend.settings.production"


def env_for(server: Server, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(DB))
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DJANGO_PROJECT_DIR=str(REPO / "example"),
        PM_PYTHON=sys.executable,
        PM_WORKDIR=str(work),
        PYTHONPATH=str(REPO),
    )
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} failed ({result.returncode}): {result.stderr}")
    return seconds, result.stdout


def pg_env(server: Server) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PGHOST="127.0.0.1", PGPORT=str(server.port), PGUSER="postgres", PGPASSWORD=server.password)
    env["PGDATABASE"] = DB
    return env


def make_meta_for(dump: Path, template_meta: Path) -> None:
    """Metadata for a dump taken by hand, built with the kit's own functions."""
    meta = metadata.load(template_meta)
    info = validate.archive_info(dump)
    raw = meta.to_dict() | {
        "file": dump.name,
        "size_bytes": dump.stat().st_size,
        "sha256": validate.sha256_file(dump),
        "toc_entries": info.toc_entries,
        "compression": int(info.compression),
    }
    metadata.write(metadata.from_dict(raw), metadata.meta_path_for(dump))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="bench_backup_"))
    server = Server(root / "pg", fast=False)
    server.start()
    try:
        work = root / "work dir"
        work.mkdir()
        env = env_for(server, work)
        create_database(server, DB)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "example" / "manage.py"), "seed_demo", "--scale", str(args.scale)],
            env=env, cwd=work, check=True, capture_output=True, text=True,
        )  # fmt: skip
        seed_seconds = time.perf_counter() - t0
        size = subprocess.run(
            ["psql", "-Atc", f"SELECT pg_database_size('{DB}')"],
            env=pg_env(server), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        rows = subprocess.run(
            ["psql", "-Atc", "SELECT sum(n_live_tup) FROM pg_stat_user_tables"],
            env=pg_env(server), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

        plain, kit, kit_inner = [], [], []
        plain_file = root / "plain.dump"
        for run in range(args.runs):
            order = ("plain", "kit") if run % 2 == 0 else ("kit", "plain")
            for which in order:
                if which == "plain":
                    plain_file.unlink(missing_ok=True)
                    seconds, _ = timed(
                        ["pg_dump", "-Fc", "-Z9", "-f", str(plain_file)], pg_env(server), root
                    )
                    plain.append(seconds)
                else:
                    shutil.rmtree(work / "backups", ignore_errors=True)
                    shutil.rmtree(work / "rollback_scripts", ignore_errors=True)
                    seconds, out = timed([str(REPO / "production_migrate.sh"), "backup"], env, work)
                    kit.append(seconds)
                    line = next(x for x in out.splitlines() if x.startswith("Duration: "))
                    kit_inner.append(float(line.split()[1].rstrip("s")))
        kit_dump = next((work / "backups").glob("*.sql"))
        kit_size, plain_size = kit_dump.stat().st_size, plain_file.stat().st_size

        # Shallow validation on a big (-Z0) dump with metadata.
        big = work / "backups" / "medguard_backup_20000101_000000.sql"
        subprocess.run(["pg_dump", "-Fc", "-Z0", "-f", str(big)], env=pg_env(server), check=True)
        make_meta_for(big, kit_dump.with_suffix(".json"))
        big_size = big.stat().st_size
        validate_cli, validate_inner = [], []
        for _ in range(args.runs):
            seconds, _ = timed(
                [sys.executable, str(REPO / "rollback_manager.py"), "validate-backup", str(big)], env, work
            )
            validate_cli.append(seconds)
            start = time.perf_counter()
            result = validate.validate(big)
            validate_inner.append(time.perf_counter() - start)
            assert result.ok, result.reason
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    ratio, ratio_inner = med(kit) / med(plain), med(kit_inner) / med(plain)

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    text = f"""# backup and validate-backup figures

Measured by `bench/bench_backup.py` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
{platform.node()} ({os.cpu_count()} CPUs, {platform.platform()}), PostgreSQL client
{subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout.strip()},
a throwaway server with fsync on. Medians of {args.runs} runs, alternating order.

Database: demo seeded with `manage.py seed_demo --scale {args.scale}` in {seed_seconds:.1f}s:
{int(rows):,} rows, {int(size):,} bytes (pg_database_size).

| figure | command | median (s) | runs (s) | target | result |
|---|---|---|---|---|---|
| plain dump | `pg_dump -Fc -Z9 -f FILE` | {med(plain):.2f} | {runs(plain)} | | {plain_size:,} bytes |
| kit backup, whole command | `./production_migrate.sh backup` | {med(kit):.2f} | {runs(kit)} | | {kit_size:,} bytes |
| ratio kit / plain (whole command) | | **{ratio:.3f}** | | <= 1.05 | {"met" if ratio <= 1.05 else "NOT met"} |
| kit backup, inside Python (its `Duration:` line) | same run | {med(kit_inner):.2f} | {runs(kit_inner)} | | |
| ratio kit / plain (inside Python) | | **{ratio_inner:.3f}** | | <= 1.05 | {"met" if ratio_inner <= 1.05 else "NOT met"} |
| shallow validate, whole command | `python rollback_manager.py validate-backup FILE` on a {big_size / 1e6:.0f} MB -Z0 dump | {med(validate_cli):.2f} | {runs(validate_cli)} | < 0.5 | {"met" if med(validate_cli) < 0.5 else "NOT met"} |
| shallow validate, in-process | `validate.validate(FILE)` | {med(validate_inner):.3f} | {runs(validate_inner)} | < 0.5 | {"met" if med(validate_inner) < 0.5 else "NOT met"} |

The whole-command figures include starting bash, Python, click and Django (settings import)
and the connection; "inside Python" starts at the tool check and ends after the metadata is
written: snapshot export, pg_dump, row counts in the snapshot (concurrent with pg_dump), the
full-read check (`pg_restore -f /dev/null` fed from the growing file while pg_dump writes),
SHA-256, `pg_restore --list`, fsync + rename, the rollback script and the metadata.

Reproduce: `.venv/bin/python bench/bench_backup.py --scale {args.scale} --runs {args.runs}`.
"""  # noqa: E501
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(json.dumps({"ratio": ratio, "ratio_inner": ratio_inner, "validate_cli": med(validate_cli)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
