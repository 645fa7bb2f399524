"""What the lint adds to check-migrations. Run by hand:

    .venv/bin/python bench/bench_lint.py              # 5 runs of each arm, writes the results
    .venv/bin/python bench/bench_lint.py --runs 9 --no-write

Starts a throwaway PostgreSQL (fsync on: fast=False) in a temporary directory, prepares one
database per case, and times, as whole commands (wall clock, start to exit, Python start-up
included), the same check-migrations with and without the lint:

    lint:    python -m migration_tools check-migrations --json
    no-lint: python -m migration_tools check-migrations --no-lint --json

check-migrations changes nothing, so every run reads the same database. The two arms alternate
(no-lint first on even runs, lint first on odd ones) so drift hits both.

Cases:
  demo                the demo seeded at its released state (`manage.py seed_demo`): its 5 pending
                      migrations (exit 1: the NOT NULL column breaks the running code)
  long-history        bench/make_long_history.py's project (200 migrations in 5 apps, plus
                      contenttypes and auth) on an empty database: every migration pending
  long-history-tables the same project with each app at its 0001: 195 pending migrations that
                      alter existing tables, so every one's SQL is collected (the lint's worst case)

Writes bench/results/lint.md: the medians, the lint's extra time (target < 1 s for 200
migrations) and every run's figure.
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
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import django  # noqa: E402
import make_long_history  # noqa: E402

from devtools.pg_server import Server, create_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "lint.md"
TARGET_EXTRA = 1.0
ARMS = {"no-lint": ["--no-lint"], "lint": []}


@dataclass
class Case:
    name: str
    project: Path
    settings: str
    describe: str
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    pending: int = 0
    statements: int = 0
    collected: int = 0
    findings: int = 0

    def median(self, arm: str) -> float:
        return statistics.median(self.wall[arm])

    def cpu_median(self, arm: str) -> float:
        return statistics.median(self.cpu[arm])


def env_for(server: Server, case: Case, dbname: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(dbname))
    env.update(DJANGO_SETTINGS_MODULE=case.settings, DJANGO_PROJECT_DIR=str(case.project),
               PM_WORKDIR=str(workdir), PYTHONPATH=str(REPO))
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path,
        ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def prepare(server: Server, case: Case, dbname: str, work: Path) -> None:
    create_database(server, dbname)
    env = env_for(server, case, dbname, work)
    if case.name == "demo":
        run([sys.executable, str(case.project / "manage.py"), "seed_demo"], env, work)
    elif case.name == "long-history-tables":
        for app in make_long_history.APP_NAMES[:5]:
            run([sys.executable, str(case.project / "manage.py"), "migrate", app, "0001", "-v0"], env, work)


def measure(server: Server, case: Case, runs: int, work: Path) -> None:
    import json

    dbname = f"lint_{case.name.replace('-', '_')}"
    prepare(server, case, dbname, work)
    env = env_for(server, case, dbname, work)
    arms = list(ARMS)
    for index in range(runs):
        for arm in arms[index % 2:] + arms[: index % 2]:
            argv = [sys.executable, "-m", "migration_tools", "check-migrations", "--json", *ARMS[arm]]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            result = run(argv, env, work, ok=(0, 1))
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            case.wall.setdefault(arm, []).append(seconds)
            case.cpu.setdefault(arm, []).append(cpu)
            report = json.loads(result.stdout)
            case.pending = len(report["pending"])
            if report["lint"] is not None:
                lint = report["lint"]
                case.statements, case.findings = len(lint["statements"]), len(lint["findings"])
                case.collected = case.pending - len(lint["skipped"])
            print(f"{case.name:20} run {index + 1} {arm:8} {seconds:6.3f}s wall {cpu:6.3f}s cpu", flush=True)


def runs_text(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def write_results(cases: list[Case], runs: int) -> None:
    rows = [
        "| case | pending | migrations with SQL collected | statements | findings | `--no-lint` "
        "| with the lint | **lint extra** | client CPU no-lint / lint | no-lint runs (s) | lint runs (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        extra = case.median("lint") - case.median("no-lint")
        rows.append(
            f"| {case.name} | {case.pending} | {case.collected} | {case.statements} | {case.findings} "
            f"| {case.median('no-lint'):.3f} s | {case.median('lint'):.3f} s | **{extra:+.3f} s** "
            f"| {case.cpu_median('no-lint'):.2f} s / {case.cpu_median('lint'):.2f} s "
            f"| {runs_text(case.wall['no-lint'])} | {runs_text(case.wall['lint'])} |"
        )
    described = "\n".join(f"- **{c.name}**: {c.describe}." for c in cases)
    RESULTS.write_text(f"""# check-migrations: what the lint costs

Reproduce: `.venv/bin/python bench/bench_lint.py --runs {runs}` (writes this file).

Machine: {platform.platform()}, Python {platform.python_version()}, Django {django.get_version()},
{os.cpu_count()} CPUs. Database: a throwaway PostgreSQL on loopback with fsync on, started by the
benchmark.

Each figure is the wall-clock time of `python -m migration_tools check-migrations --json`, start
to exit, with the lint (the default) and with `--no-lint` (the plan, missing migrations and
conflicts only, as before the lint), on the same database; {runs} runs of each, the order
alternating. "Lint extra" is the difference of the medians (target < {TARGET_EXTRA:.0f} s for 200
migrations). "Migrations with SQL collected" counts those whose SQL the lint rendered (RunPython
ones included): a migration that only touches tables created earlier in the same plan cannot
produce a finding and is skipped
(`migration_tools/lint/scope.py`), which is what keeps the all-pending history cheap; the
`long-history-tables` case has nearly every migration altering an existing table, so its extra is
Django rendering the models for each operation (the work `sqlmigrate` and `migrate` also do).
"Client CPU" is the user+system CPU of the command's process.

{described}

{chr(10).join(rows)}
""")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    parser.add_argument("--cases", default="demo,long-history,long-history-tables")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_lint_") as tmp:
        root = Path(tmp)
        long_dir = root / "long_history"
        make_long_history.write_project(long_dir, 200, 5)
        every = [
            Case("demo", REPO / "example", "medguard_backend.settings.production",
                 "the demo seeded at its released state (`manage.py seed_demo`), its 5 pending migrations"),
            Case("long-history", long_dir, "longhist_site.settings",
                 "bench/make_long_history.py's project (200 migrations in 5 apps, plus contenttypes and "
                 "auth) on an empty database: every migration pending, every table created by the plan"),
            Case("long-history-tables", long_dir, "longhist_site.settings",
                 "the same project with each of its 5 apps migrated to 0001 first: the rest of the "
                 "history alters tables that exist (the lint's worst case)"),
        ]
        cases = [case for case in every if case.name in args.cases.split(",")]
        server = Server(root / "pg", fast=False)
        server.start()
        try:
            for case in cases:
                work = root / f"work-{case.name}"
                work.mkdir()
                measure(server, case, args.runs, work)
        finally:
            server.destroy()
    for case in cases:
        print(f"{case.name:20} no-lint {case.median('no-lint'):.3f}s lint {case.median('lint'):.3f}s "
              f"extra {case.median('lint') - case.median('no-lint'):+.3f}s")
    if not args.no_write:
        write_results(cases, args.runs)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
