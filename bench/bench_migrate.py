"""The kit's migrate against plain Django's, on the same fresh database and plan. Run by hand:

    .venv/bin/python bench/bench_migrate.py              # 3 runs of each case, writes the results
    .venv/bin/python bench/bench_migrate.py --runs 5

Starts a throwaway PostgreSQL (fsync on, as in production: fast=False) in a temporary
directory. For each case a template database is prepared once; every run copies it to a fresh
database (CREATE DATABASE ... TEMPLATE) and times, as whole commands from a shell's point of
view (wall clock, start to exit):

    kit:   ./production_migrate.sh migrate --monitor --no-backup
    plain: python manage.py migrate --no-input

The two alternate (plain first on even runs, kit first on odd ones) so drift hits both. After
every run the applied migrations are compared with the plan: both must end in the same state.

Cases:
  demo          example/ seeded with `manage.py seed_demo` (the released state), then its pending plan
  long-history  bench/make_long_history.py's project (200 migrations in 5 apps, plus contrib), empty db
  no-op         the demo, already fully migrated: the fixed cost of each command (nothing to apply)

Writes bench/results/migrate.md: the medians, their ratio (kit / plain; target <= 1.05) and
every run's figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import django  # noqa: E402
import make_long_history  # noqa: E402

from devtools.pg_server import Server, create_database, drop_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "migrate.md"
TARGET = 1.05


@dataclass
class Case:
    name: str
    project: Path
    settings: str
    describe: str
    prepare: Callable[[Server, str, Path], None]  # fills the template database
    timings: dict[str, list[float]] = field(default_factory=dict)  # arm -> wall seconds per run
    cpu: dict[str, list[float]] = field(default_factory=dict)  # arm -> client CPU seconds per run
    migrations: int = 0

    def median(self, arm: str) -> float:
        return statistics.median(self.timings[arm])

    def cpu_median(self, arm: str) -> float:
        return statistics.median(self.cpu[arm])

    @property
    def ratio(self) -> float:
        return self.median("kit") / self.median("plain")


def env_for(server: Server, case: Case, dbname: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(dbname))
    env.update(
        DJANGO_SETTINGS_MODULE=case.settings,
        DJANGO_PROJECT_DIR=str(case.project),
        PM_PYTHON=sys.executable,
        PM_WORKDIR=str(workdir),
        PYTHONPATH=str(REPO),
    )
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def applied(server: Server, dbname: str) -> set[tuple[str, str]]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", password=server.password, dbname=dbname
    ) as conn:
        return {(a, n) for a, n in conn.execute("SELECT app, name FROM django_migrations")}


def commands(case: Case) -> dict[str, list[str]]:
    """The two commands compared, and (--diagnose) two more that show where the kit's time goes."""
    return {
        "plain": [sys.executable, str(case.project / "manage.py"), "migrate", "--no-input"],
        "kit": [str(REPO / "production_migrate.sh"), "migrate", "--monitor", "--no-backup"],
        "kit-no-monitor": [str(REPO / "production_migrate.sh"), "migrate", "--no-backup"],
        "core": [sys.executable, "-m", "migration_tools", "migrate", "--monitor", "--no-backup"],
    }


def measure(server: Server, case: Case, runs: int, work: Path, arms: list[str]) -> None:
    template = f"tpl_{case.name.replace('-', '_')}"
    create_database(server, template)
    case.prepare(server, template, work)
    before = applied_or_empty(server, template)
    reference: set[tuple[str, str]] | None = None
    for index in range(runs):
        # Rotate which command goes first, so drift and caches hit every command alike.
        order = arms[index % len(arms):] + arms[: index % len(arms)]
        for arm in order:
            dbname = f"b_{uuid.uuid4().hex[:10]}"
            create_database(server, dbname, template=template)
            workdir = work / f"{case.name}-{arm}-{index}"
            workdir.mkdir()
            env = env_for(server, case, dbname, workdir)
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            run(commands(case)[arm], env, workdir)
            seconds = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            after = applied(server, dbname)
            if reference is None:
                reference = after
            elif after != reference:
                raise SystemExit(f"{case.name}: {arm} ended with other migrations applied than the first run")
            case.migrations = len(after - before)
            case.timings.setdefault(arm, []).append(seconds)
            case.cpu.setdefault(arm, []).append(cpu)
            drop_database(server, dbname)
            print(f"{case.name:13} run {index + 1} {arm:14} {seconds:7.3f}s wall {cpu:7.3f}s cpu "
                  f"({case.migrations} applied)", flush=True)
    drop_database(server, template)


def applied_or_empty(server: Server, dbname: str) -> set[tuple[str, str]]:
    try:
        return applied(server, dbname)
    except Exception:  # no django_migrations table yet: an empty database
        return set()


def seed_demo(server: Server, dbname: str, work: Path) -> None:
    env = env_for(server, DEMO, dbname, work)
    run([sys.executable, str(DEMO.project / "manage.py"), "seed_demo"], env, work)


def migrate_demo_fully(server: Server, dbname: str, work: Path) -> None:
    seed_demo(server, dbname, work)
    run([sys.executable, str(DEMO.project / "manage.py"), "migrate", "--no-input"],
        env_for(server, DEMO, dbname, work), work)


def nothing(server: Server, dbname: str, work: Path) -> None:
    return None


DEMO = Case(
    "demo", REPO / "example", "medguard_backend.settings.production",
    "the demo seeded at its released state (`manage.py seed_demo`), then its pending plan", seed_demo,
)


def runs_text(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def write_results(cases: list[Case], runs: int, arms: list[str]) -> None:
    rows = [
        "| case | migrations applied | plain `manage.py migrate` | kit `migrate --monitor --no-backup` "
        "| **ratio kit / plain** | ratio of the fastest runs | client CPU plain / kit | plain runs (s) "
        "| kit runs (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        rows.append(
            f"| {case.name} | {case.migrations} | {case.median('plain'):.3f} s | {case.median('kit'):.3f} s "
            f"| **{case.ratio:.3f}** | {min(case.timings['kit']) / min(case.timings['plain']):.3f} "
            f"| {case.cpu_median('plain'):.2f} s / {case.cpu_median('kit'):.2f} s "
            f"| {runs_text(case.timings['plain'])} | {runs_text(case.timings['kit'])} |"
        )
    extra = [arm for arm in arms if arm not in ("plain", "kit")]
    diagnose = ""
    if extra:
        head = " | ".join(arm for arm in arms)
        lines = [f"| case | {head} |", "|---|" + "---|" * len(arms)]
        for case in cases:
            cells = " | ".join(f"{case.median(arm):.3f} s ({case.cpu_median(arm):.2f} s cpu)" for arm in arms)
            lines.append(f"| {case.name} | {cells} |")
        diagnose = (
            "\nWhere the kit's time goes (`--diagnose`: medians of wall time, client CPU in brackets; "
            "`kit-no-monitor` is `production_migrate.sh migrate --no-backup`, `core` is "
            "`python -m migration_tools migrate --monitor --no-backup`, without the shell wrapper):\n\n"
            + "\n".join(lines)
            + "\n"
        )
    described = "\n".join(f"- **{c.name}**: {c.describe}." for c in cases)
    flag = " --diagnose" if extra else ""
    text = f"""# migrate: the kit against plain Django

Reproduce: `.venv/bin/python bench/bench_migrate.py --runs {runs}{flag}` (writes this file).
The long-history project on its own: `.venv/bin/python bench/make_long_history.py OUTDIR --check`.

Machine: {platform.platform()}, Python {platform.python_version()}, Django {django.get_version()},
{os.cpu_count()} CPUs. Database: a throwaway PostgreSQL on loopback with fsync on
(`devtools.throwaway_pg.Server(..., fast=False)`), started by the benchmark.

Each figure is the wall-clock time of the whole command, from start to exit, as an operator
runs it (Python start-up and, for the kit, the shell wrapper, pre-flight, deploy lock and the
monitor included), on a fresh copy (`CREATE DATABASE ... TEMPLATE`) of the same prepared
database, so both commands apply the same plan from the same state. {runs} runs each, the
order of the commands rotating from run to run; the median of each and their ratio (target
<= {TARGET}). After every run the applied migrations are checked to be the same for every
command. The ratio of the fastest runs is shown too: on a shared machine the minimum is the
figure least disturbed by other load. "Client CPU" is the user+system CPU time of the
command's processes (not the server's).

{described}

{chr(10).join(rows)}
{diagnose}"""
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    parser.add_argument("--diagnose", action="store_true",
                        help="also time the kit without --monitor and without the shell wrapper")
    parser.add_argument("--cases", default="demo,long-history,no-op", help="comma-separated subset")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_migrate_") as tmp:
        root = Path(tmp)
        long_dir = root / "long_history"
        make_long_history.write_project(long_dir, 200, 5)
        cases = [
            DEMO,
            Case("long-history", long_dir, "longhist_site.settings",
                 "bench/make_long_history.py's project: 200 migrations in 5 apps (fields, indexes, foreign "
                 "keys between the apps) plus contenttypes and auth, from an empty database", nothing),
            Case("no-op", REPO / "example", "medguard_backend.settings.production",
                 "the demo already fully migrated: nothing to apply, so only each command's fixed cost",
                 migrate_demo_fully),
        ]
        wanted = args.cases.split(",")
        cases = [case for case in cases if case.name in wanted]
        arms = ["plain", "kit", "kit-no-monitor", "core"] if args.diagnose else ["plain", "kit"]
        server = Server(root / "pg", fast=False)
        server.start()
        try:
            for case in cases:
                work = root / f"work-{case.name}"
                work.mkdir()
                measure(server, case, args.runs, work, arms)
        finally:
            server.destroy()
    for case in cases:
        print(f"{case.name:13} plain {case.median('plain'):.3f}s kit {case.median('kit'):.3f}s "
              f"ratio {case.ratio:.3f}")
    if not args.no_write:
        write_results(cases, args.runs, arms)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
