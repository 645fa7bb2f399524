"""How fast a failed migrate is undone, and what the one-transaction default costs. Run by hand:

    .venv/bin/python bench/bench_undo.py                       # scale 1,000,000, 3 undo runs, 5 success runs
    .venv/bin/python bench/bench_undo.py --scale 100000 --runs 3 --success-runs 5

Starts a throwaway PostgreSQL (fsync on, as in production), seeds a template database with
`manage.py seed_demo --scale N`, copies it (CREATE DATABASE ... TEMPLATE) for every run; writes
bench/results/undo.md.

1. Undo: `python -m migration_tools migrate [--commit-each]` (backup taken), FAILING_APP_MODE=last of
   tests/fixtures/failing_settings.py: failing_app.0002_boom fails as the LAST migration of each plan.
   (a) the default, one transaction, and (c) --commit-each, both on the full release; (b) --commit-each
   on a copy first brought to medguard_notifications.0003, so the rest is reversible. The figure is the
   kit's log line `rolled back (<how>) <s>s after the failure`; the database is then compared.
2. Success: wall time of `migrate --no-backup` against `migrate --no-backup --commit-each` on the
   demo's pending release, alternating which goes first. Target: ratio of medians <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from devtools.pg_server import Server, create_database, drop_database  # noqa: E402
from migration_tools.pg.catalog import STATS_FLUSH_DELAY_S  # noqa: E402

RESULTS = REPO / "bench" / "results" / "undo.md"
TEMPLATE = "undo_template"
TEMPLATE_B = "undo_template_purged"  # TEMPLATE brought to medguard_notifications.0003 (mode b)
PURGE = "medguard_notifications.0003_purge_expired_notifications"
APP_MODE = "last"  # FAILING_APP_MODE: boom depends on every leaf of the pending release
TARGET = 1.05
FAILING_SETTINGS = "tests.fixtures.failing_settings"
PROD = "medguard_backend.settings.production"
MANAGE = [sys.executable, str(REPO / "example" / "manage.py")]
MIGRATE = [sys.executable, "-m", "migration_tools", "migrate"]
BOOM = "failing_app.0002_boom"
UNDONE = re.compile(r"rolled back \((.*)\) ([0-9.]+)s after the failure")


@dataclass(frozen=True)
class Mode:
    key: str
    title: str
    template: str  # what each run's copy is made from
    flags: tuple[str, ...]


MODES = [
    Mode("a", "default (whole plan in one transaction), full release", TEMPLATE, ()),
    Mode("b", "`--commit-each`, reversible plan (copy past the purge)", TEMPLATE_B, ("--commit-each",)),
    Mode("c", "`--commit-each`, full release (holds the irreversible purge)", TEMPLATE, ("--commit-each",)),
]


def env_for(server: Server, dbname: str, workdir: Path, settings: str) -> dict[str, str]:
    """tests/support.py base_env, with the settings module chosen here (PROD ignores FAILING_APP_MODE)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
    return env | server.env(dbname) | {
        "DJANGO_SETTINGS_MODULE": settings, "FAILING_APP_MODE": APP_MODE, "PM_PYTHON": sys.executable,
        "DJANGO_PROJECT_DIR": str(REPO / "example"), "PM_WORKDIR": str(workdir), "PYTHONPATH": str(REPO)}


def run(argv: list[str], env: dict[str, str], cwd: Path, expect: int = 0) -> tuple[float, str]:
    """Wall seconds and stdout of a command that must exit with `expect`."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if result.returncode != expect:
        raise SystemExit(f"{' '.join(argv[:4])} exited {result.returncode}, expected {expect}:\n"
                         f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def connect(server: Server, dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=server.password,
                           dbname=dbname, autocommit=True)


def fingerprint(server: Server, dbname: str) -> dict[str, Any]:
    """What "the database as before" means here: schema, applied migrations, every row (hashed)."""
    with connect(server, dbname) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        shape: dict[str, Any] = {
            "migrations": sorted(conn.execute("SELECT app, name FROM django_migrations").fetchall()),
            "columns": sorted(conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public'").fetchall()),
            "indexes": sorted(conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            ).fetchall()),
            "constraints": sorted(conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace").fetchall()),
        }
        for table in tables:
            shape[f"rows {table}"] = conn.execute(
                f'SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM "{table}" t').fetchone()
        return shape


def drop_with_side_databases(server: Server, dbname: str) -> None:
    """The copy, and what a swap restore leaves next to it (<db>__pre_rollback_<ts>, ...)."""
    with connect(server, "postgres") as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
            (dbname, dbname + "\\_\\_%"))]
    for name in names:
        drop_database(server, name)


def fresh_copy(server: Server, work: Path, label: str, template: str = TEMPLATE) -> tuple[str, Path]:
    dbname = f"u_{uuid.uuid4().hex[:10]}"
    create_database(server, dbname, template=template)
    (workdir := work / label).mkdir()
    return dbname, workdir


def plan_order(server: Server, work: Path, template: str) -> list[str]:
    """The failing plan's order, as `./production_migrate.sh migrate --dry-run` prints it."""
    dbname, workdir = fresh_copy(server, work, f"dry-run-{uuid.uuid4().hex[:6]}", template)
    env = env_for(server, dbname, workdir, FAILING_SETTINGS)
    _, out = run([str(REPO / "production_migrate.sh"), "migrate", "--dry-run"], env, workdir)
    drop_with_side_databases(server, dbname)
    return [m.group(1) for m in re.finditer(r"^-- \[\d+/\d+\] (\S+)$", out, re.MULTILINE)]


def measure_undo(server: Server, work: Path, mode: Mode, index: int,
                 before: dict[str, Any]) -> tuple[float, str, list[str]]:
    dbname, workdir = fresh_copy(server, work, f"undo-{mode.key}-{index}", mode.template)
    env = env_for(server, dbname, workdir, FAILING_SETTINGS)
    run([*MIGRATE, *mode.flags], env, workdir, expect=3)
    found = UNDONE.findall((workdir / "migration.log").read_text())
    if len(found) != 1:
        raise SystemExit(f"mode {mode.key}: expected one 'rolled back' line in migration.log, found {found}")
    how, seconds = found[0][0], float(found[0][1])
    after = fingerprint(server, dbname)
    diff = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    drop_with_side_databases(server, dbname)
    print(f"undo ({mode.key}) run {index + 1}: {seconds:.3f}s ({how}); "
          f"{'as before' if not diff else 'DIFFERS: ' + ', '.join(diff)}", flush=True)
    return seconds, how, diff


def measure_success(server: Server, work: Path, arm: str, index: int) -> tuple[float, list[Any], bool]:
    dbname, workdir = fresh_copy(server, work, f"success-{arm}-{index}")
    env = env_for(server, dbname, workdir, PROD)
    flags = ["--commit-each"] if arm == "commit-each" else []
    seconds, out = run([*MIGRATE, "--no-backup", *flags], env, workdir)
    with connect(server, dbname) as conn:
        applied = sorted(conn.execute("SELECT app, name FROM django_migrations").fetchall())
    drop_with_side_databases(server, dbname)
    print(f"success run {index + 1} {arm:12} {seconds:.3f}s", flush=True)
    return seconds, applied, "non-atomic migration" in out


def values(xs: list[float], digits: int = 3) -> str:
    return ", ".join(f"{x:.{digits}f}" for x in xs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each undo mode")
    parser.add_argument("--success-runs", type=int, default=5, help="runs of each successful migrate")
    args = parser.parse_args(argv)
    undo: dict[str, list[tuple[float, str, list[str]]]] = {m.key: [] for m in MODES}
    success: dict[str, list[float]] = {"one-transaction": [], "commit-each": []}
    with tempfile.TemporaryDirectory(prefix="bench-undo-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o711)
        (work := root / "work").mkdir()
        server = Server(root / "pg", fast=False)
        server.start()
        try:
            create_database(server, TEMPLATE)
            seed_s, _ = run([*MANAGE, "seed_demo", "--scale", str(args.scale)],
                            env_for(server, TEMPLATE, work, PROD), work)
            create_database(server, TEMPLATE_B, template=TEMPLATE)
            run([*MANAGE, "migrate", "medguard_notifications", "0003"],
                env_for(server, TEMPLATE_B, work, PROD), work)
            befores = {t: fingerprint(server, t) for t in (TEMPLATE, TEMPLATE_B)}
            rows = sum(v[0] for k, v in befores[TEMPLATE].items() if k.startswith("rows "))
            with connect(server, "postgres") as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
                db_bytes = conn.execute("SELECT pg_database_size(%s)", (TEMPLATE,)).fetchone()[0]
            print(f"seeded {rows:,} rows in {seed_s:.1f}s", flush=True)
            orders = {m.key: plan_order(server, work, m.template) for m in MODES}
            if any(not o or o[-1] != BOOM for o in orders.values()):
                raise SystemExit(f"{BOOM} is not the last migration of every plan: {orders}")
            for index in range(args.runs):
                for mode in MODES if index % 2 == 0 else MODES[::-1]:
                    undo[mode.key].append(measure_undo(server, work, mode, index, befores[mode.template]))
            applied_sets: list[list[Any]] = []
            fallback = False
            for index in range(args.success_runs):
                arms = ["one-transaction", "commit-each"]
                for arm in arms if index % 2 == 0 else arms[::-1]:
                    seconds, applied, warned = measure_success(server, work, arm, index)
                    success[arm].append(seconds)
                    applied_sets.append(applied)
                    fallback = fallback or (warned and arm == "one-transaction")
            same_end = all(a == applied_sets[0] for a in applied_sets)
        finally:
            server.destroy()

    lines = [
        "# migrate: undoing a failed run, and the cost of the one-transaction default",
        "",
        f"Written by `.venv/bin/python bench/bench_undo.py --scale {args.scale} --runs {args.runs} "
        f"--success-runs {args.success_runs}` (all figures from one run of it).",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"PostgreSQL {version} (throwaway cluster on loopback, fsync on). Demo seeded with "
        f"`python example/manage.py seed_demo --scale {args.scale}`: {rows:,} rows in all "
        f"({db_bytes:,} bytes, seeded in {seed_s:.1f} s) into a template database; every run works on "
        "its own copy (`CREATE DATABASE ... TEMPLATE`).",
        "",
        "## 1. From the failure to the database as before",
        "",
        "`python -m migration_tools migrate [--commit-each]` (pre-migrate backup taken, not timed here) with "
        f"`DJANGO_SETTINGS_MODULE={FAILING_SETTINGS}` and `FAILING_APP_MODE={APP_MODE}`: `{BOOM}` divides "
        "by zero and depends on every leaf of the demo's pending release, so in every mode it fails as the "
        "**last** migration of the plan, after all the others were applied. The figure is the kit's own: "
        "the line `rolled back (<how>) <s>s after the failure` in `migration.log` (from the moment the "
        "failure surfaced to the applied migrations checked equal to those before the run). After every "
        "run the database was compared with its template: applied migrations, columns, indexes, "
        "constraints, and each table's row count and the sum of its rows' hashes (sequences not compared). "
        f"Modes (a) and (c) run the full release, which holds the irreversible `{PURGE}`: (c) can only be "
        "undone by restoring the backup. Mode (b) needs a plan without it, so its copies come from a second "
        "template, the seeded one first brought to that migration by `python example/manage.py migrate "
        "medguard_notifications 0003` (the kit's migrate takes no target); the rest of its plan is "
        "reversible and still ends with the failing migration. The order of the three modes alternates "
        f"from run to run. Mode (c) includes the kit's {STATS_FLUSH_DELAY_S} s wait for the statistics to "
        "flush before it decides that nobody else wrote since the backup.",
        "",
        "Where the failing migration sits in each plan (`./production_migrate.sh migrate --dry-run`):",
        "",
        *(f"- ({k}): `{BOOM}` is **last** ({len(o)} of {len(o)}): " + ", ".join(f"`{m}`" for m in o)
          for k, o in orders.items()),
        "",
        "| mode | how the kit undid it | median | runs (s) | database as before |", "|---|---|---|---|---|",
    ]
    for mode in MODES:
        got = undo[mode.key]
        hows = sorted({re.sub(r"medguard_backup_\S+", "the pre-migrate backup", h) for _, h, _ in got})
        diffs = [d for _, _, d in got if d]
        same = "yes, every run" if not diffs else "**NO**: " + "; ".join(", ".join(d) for d in diffs)
        secs = [s for s, _, _ in got]
        lines.append(f"| ({mode.key}) {mode.title} | {'; '.join(hows)} | **{statistics.median(secs):.3f} s** "
                     f"| {values(secs)} | {same} |")
    med_one, med_each = (statistics.median(success[arm]) for arm in ("one-transaction", "commit-each"))
    ratio = med_one / med_each
    lines += [
        "",
        "## 2. A successful run: one transaction against per-migration commits",
        "",
        "Wall time of the whole command (start to exit) on the demo's pending release "
        "(`DJANGO_SETTINGS_MODULE=medguard_backend.settings.production`), each on a fresh copy of the "
        f"same seed, {args.success_runs} runs each, the order of the two alternating from run to run. "
        f"Every run ended with the same applied migrations: {'yes' if same_end else '**NO**'}."
        + (" **The default fell back to per-migration commits (non-atomic migration).**" if fallback else ""),
        "",
        "| command | median | runs (s) |",
        "|---|---|---|",
        f"| `python -m migration_tools migrate --no-backup` (one transaction) | **{med_one:.3f} s** "
        f"| {values(success['one-transaction'])} |",
        f"| `python -m migration_tools migrate --no-backup --commit-each` | **{med_each:.3f} s** "
        f"| {values(success['commit-each'])} |",
        f"| **ratio one transaction / commit-each** (target ≤ {TARGET}) | **{ratio:.3f}** "
        f"— {'met' if ratio <= TARGET else 'NOT met'} | |",
        "",
        "Reproduce: `.venv/bin/python bench/bench_undo.py` (writes this file).",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
