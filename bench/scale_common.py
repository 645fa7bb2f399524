"""Helpers shared by the issue-16 benchmarks (bench_pgbackrest.py, bench_replica_lag.py): the kit's and
the PostgreSQL client tools' environments, steps timed as whole processes (wall clock, client CPU
from getrusage(RUSAGE_CHILDREN), the 1-minute load average when the step ended), the demo's seed."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example"
DEMO_SETTINGS = "medguard_backend.settings.production"
GB100 = 100e9

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devtools.pg_server import Server  # noqa: E402


def kit_env(server: Server, dbname: str, work: Path, settings: str, extra: Path) -> dict[str, str]:
    """The kit's environment: this server and database, these settings, `extra` on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    env.update(server.env(dbname))
    env.update(DJANGO_SETTINGS_MODULE=settings, DJANGO_PROJECT_DIR=str(EXAMPLE), PM_PYTHON=sys.executable,
               PM_WORKDIR=str(work), PYTHONPATH=f"{REPO}:{extra}")
    return env


def pg_env(server: Server, dbname: str = "postgres") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST="127.0.0.1", PGPORT=str(server.port), PGUSER="postgres", PGPASSWORD=server.password,
               PGDATABASE=dbname)
    return env


def write_settings(folder: Path, module: str, kit_keys: dict[str, Any]) -> str:
    """A settings module `module` in `folder`: the demo's production settings, MIGRATION_KIT updated."""
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(
        f"from {DEMO_SETTINGS} import *  # noqa: F403\n"
        f"from {DEMO_SETTINGS} import MIGRATION_KIT\n"
        f"MIGRATION_KIT = {{**MIGRATION_KIT, **{kit_keys!r}}}\n")
    return module


def client_cpu() -> float:
    """CPU seconds (user + system) of this process's waited-for children and their waited-for children:
    the client tools, pgBackRest and the kit; not the server's backends (not our children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run to the end; its stdout; SystemExit with its output when it fails."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:4])} failed ({done.returncode}):\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def psql(server: Server, sql: str, dbname: str = "postgres") -> str:
    return run(["psql", "-v", "ON_ERROR_STOP=1", "-Atc", sql], env=pg_env(server, dbname)).strip()


@dataclass
class Step:
    seconds: float
    cpu: float
    load: float


@dataclass
class Steps:
    """Timed steps by key: wall seconds, client CPU seconds, load average at the end."""

    done: dict[str, Step] = field(default_factory=dict)

    @contextmanager
    def timing(self, key: str) -> Iterator[None]:
        cpu = client_cpu()
        start = time.perf_counter()
        yield
        step = Step(time.perf_counter() - start, client_cpu() - cpu, os.getloadavg()[0])
        self.done[key] = step
        print(f"{key}: {step.seconds:.2f}s cpu {step.cpu:.1f}s load {step.load:.1f}", flush=True)

    def run(self, key: str, argv: list[str], env: dict[str, str] | None = None,
            cwd: Path | None = None) -> str:
        with self.timing(key):
            return run(argv, env, cwd)

    def __getitem__(self, key: str) -> Step:
        return self.done[key]


def seed(server: Server, dbname: str, scale: int, env: dict[str, str], cwd: Path) -> float:
    """`manage.py seed_demo --scale N` into `dbname`, then VACUUM ANALYZE and CHECKPOINT; seconds taken."""
    start = time.perf_counter()
    run([sys.executable, str(EXAMPLE / "manage.py"), "seed_demo", "--scale", str(scale)], env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    psql(server, "VACUUM ANALYZE", dbname)
    psql(server, "CHECKPOINT")
    return seconds


def machine() -> str:
    pg = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return (f"{platform.node()} ({os.cpu_count()} CPUs, {platform.platform()}), Python "
            f"{platform.python_version()}, PostgreSQL client {pg}")


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def bench_main(argv: list[str] | None, doc: str | None, script: str, results: Path,
               measure: Callable[[int, Path], Any], render: Callable[[Any, int, str], str]) -> int:
    """The benchmarks' command line: --scale N (default 10M rows) and --no-write; measure in a
    temporary directory, print the results and write them to `results`."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=10_000_000)
    parser.add_argument("--no-write", action="store_true", help="print the results, do not write the file")
    args = parser.parse_args(argv)
    measured = measure(args.scale, Path(tempfile.mkdtemp(prefix=f"{Path(script).stem}_")))
    text = render(measured, args.scale, f"{script} --scale {args.scale}")
    print(text)
    if not args.no_write:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(text)
    return 0
