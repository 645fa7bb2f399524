"""verify-data against the same checks as the smallest hand-made SQL script. Run by hand:

    .venv/bin/python bench/bench_verify.py                   # 1M and 10M rows, 3 runs each
    .venv/bin/python bench/bench_verify.py --scales 100000 1000000 --runs 3 --fixed-runs 7

Starts a throwaway PostgreSQL (fsync on), seeds one database per scale with
`python example/manage.py seed_demo --scale N`, then `VACUUM (ANALYZE)` (as autovacuum would leave
a real database), and one more at the seed document's scale (about 5,000 rows) for the fixed cost.
On each database, in rotating order, with the environment tests/support.py `base_env` builds:

    kit j1 / kit j2: ./production_migrate.sh verify-data --json --jobs 1 / --jobs 2
    psql:            psql -X -At -v ON_ERROR_STOP=1 -f <the script in SQL below>

The SQL does what the kit does on the demo: counts of the 4 critical models, one anti-join per
relation the kit checks (every foreign key and both sides of every auto-created many-to-many
table of the managed models, contrib's included), the 2 configured duplicate keys, invalid
indexes and NOT VALID constraints. Every run's results are compared with the kit's --json
(the same relations, the same numbers). One untimed run of each warms the cache (and writes
the bytecode). Writes bench/results/verify.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median as med
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import psycopg  # noqa: E402
from support import base_env  # noqa: E402

from devtools.pg_server import Server, create_database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "verify.md"
TARGET = 1.2
ARMS = ["kit j1", "kit j2", "psql"]
COUNTED = ["medications_medication", "users_user", "security_securityevent",
           "medguard_notifications_notification"]
RELATIONS = [  # (table, column, parent table): what the kit's --json lists on the demo
    ("auth_permission", "content_type_id", "django_content_type"),
    ("auth_group_permissions", "group_id", "auth_group"),
    ("auth_group_permissions", "permission_id", "auth_permission"),
    ("medguard_notifications_notification", "user_id", "users_user"),
    ("medications_prescription", "medication_id", "medications_medication"),
    ("medications_prescription", "user_id", "users_user"),
    ("medications_doselog", "prescription_id", "medications_prescription"),
    ("security_securityevent", "user_id", "users_user"),
    ("users_user_groups", "user_id", "users_user"),
    ("users_user_groups", "group_id", "auth_group"),
    ("users_user_user_permissions", "user_id", "users_user"),
    ("users_user_user_permissions", "permission_id", "auth_permission"),
]
DUPLICATES = {"medications.Medication": ("medications_medication", "name, strength, form"),
              "users.User": ("users_user", "email")}


def script() -> str:
    lines = [f"SELECT 'count {t}', count(*) FROM {t};" for t in COUNTED]
    lines += [f"SELECT 'orphans {t}.{c}', count(*) FROM {t} c WHERE c.{c} IS NOT NULL "
              f"AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.id = c.{c});" for t, c, p in RELATIONS]
    lines += [f"SELECT 'duplicates {m}', coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {t} "
              f"GROUP BY {cols} HAVING count(*) > 1) g;" for m, (t, cols) in DUPLICATES.items()]
    lines += ["SELECT 'invalid indexes', count(*) FROM pg_index WHERE NOT indisvalid;",
              "SELECT 'not valid constraints', count(*) FROM pg_constraint WHERE NOT convalidated;"]
    return "\n".join(lines) + "\n"


def kit_figures(doc: dict[str, Any]) -> dict[str, int]:
    """The kit's --json in the psql script's terms; its relations must be exactly RELATIONS."""
    found = {f"count {c['table'].removeprefix('public.')}": c["rows"] for c in doc["count_details"]}
    rels = {(o["table"].removeprefix("public."), o["column"]): o["rows"] for o in doc["orphans"]}
    if set(rels) != {(t, c) for t, c, _ in RELATIONS}:
        raise SystemExit(f"the kit checked other relations than the SQL script: {sorted(rels)}")
    found |= {f"orphans {t}.{c}": n for (t, c), n in rels.items()}
    found |= {f"duplicates {d['model']}": d["extra_rows"] for d in doc["duplicates"]}
    found["invalid indexes"] = len(doc["invalid_indexes"])
    found["not valid constraints"] = len(doc["not_valid_constraints"])
    if doc["unchecked"] or doc["unique_violations"] or doc["missing_tables"]:
        raise SystemExit(f"the kit did other work than the SQL script: {doc['unchecked']} {doc['problems']}")
    return found


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-3000:]}")
    return seconds, result.stdout


def measure(server: Server, dbname: str, work: Path, sql_file: Path,
            arm: str) -> tuple[float, dict[str, int]]:
    """Wall seconds of one command, and its figures."""
    env = base_env(server, dbname, work)
    if arm == "psql":
        env |= {"PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": "postgres",
                "PGPASSWORD": server.password, "PGDATABASE": dbname}
        argv = [str(server.bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-f", str(sql_file)]
        seconds, out = run(argv, env, work)
        return seconds, {k: int(v) for k, v in (line.split("|") for line in out.splitlines())}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: the untimed run leaves the bytecode
    argv = [str(REPO / "production_migrate.sh"), "verify-data", "--json", "--jobs", arm[-1]]
    seconds, out = run(argv, env, work)
    return seconds, kit_figures(json.loads(out))


def bench_database(server: Server, dbname: str, work: Path, sql_file: Path,
                   runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    reference = None
    for index in range(-1, runs):  # run -1 warms the cache, untimed
        order = ARMS[index % len(ARMS):] + ARMS[:index % len(ARMS)]
        for arm in order:
            seconds, figures = measure(server, dbname, work, sql_file, arm)
            reference = reference or figures
            if figures != reference:
                raise SystemExit(f"{dbname} {arm}: {figures} differs from {reference}")
            if index >= 0:
                times[arm].append(seconds)
            print(f"{dbname:12} {'warm-up' if index < 0 else f'run {index + 1}':7} {arm:7} {seconds:7.3f}s",
                  flush=True)
    return times


def seed(server: Server, dbname: str, scale: int | None, work: Path) -> tuple[int, int, float]:
    """(rows, bytes, seconds) of a freshly seeded and vacuumed database."""
    create_database(server, dbname)
    argv = [sys.executable, str(REPO / "example" / "manage.py"), "seed_demo"]
    seconds, _ = run(argv + (["--scale", str(scale)] if scale else []), base_env(server, dbname, work), work)
    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", password=server.password,
                         dbname=dbname, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(f"{dbname}: {rows:,} rows, {size:,} bytes, seeded in {seconds:.1f}s", flush=True)
    return rows, size, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs=2, default=[1_000_000, 10_000_000], metavar="N")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fixed-runs", type=int, default=7, help="runs on the small database (start-up)")
    args = parser.parse_args(argv)
    labels = ["small", f"{args.scales[0]:,}", f"{args.scales[1]:,}"]
    times: dict[str, dict[str, list[float]]] = {}
    seeded: dict[str, tuple[int, int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        os.chmod(root := Path(tmp), 0o711)
        (work := root / "work").mkdir()
        (sql_file := root / "verify.sql").write_text(script())
        load = [os.getloadavg()[0]]
        server = Server(root / "pg", fast=False)
        server.start()
        try:
            names, scales = ["v_small", "v_1", "v_2"], [None, *args.scales]
            for label, dbname, scale in zip(labels, names, scales, strict=True):
                seeded[label] = seed(server, dbname, scale, work)
                runs = args.fixed_runs if scale is None else args.runs
                times[label] = bench_database(server, dbname, work, sql_file, runs)
            with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres",
                                 password=server.password, dbname="postgres") as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            load.append(os.getloadavg()[0])
        finally:
            server.destroy()
    write(args, labels, times, seeded, version, load)
    return 0


def write(args: argparse.Namespace, labels: list[str], times: dict[str, dict[str, list[float]]],
          seeded: dict[str, tuple[int, int, float]], version: str, load: list[float]) -> None:
    small, big = labels[0], labels[1:]
    fixed = {arm: med(times[small][arm]) for arm in ARMS}
    lines = [
        "# verify-data against the same checks as a hand-made SQL script", "",
        f"Written by `.venv/bin/python bench/bench_verify.py --scales {args.scales[0]} {args.scales[1]} "
        f"--runs {args.runs} --fixed-runs {args.fixed_runs}` (all figures from one run of it).",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"Load average (1 min) {load[0]:.1f} before the benchmark, {load[1]:.1f} at its end (its own "
        f"processes included). PostgreSQL {version} (throwaway cluster on loopback, fsync on, default "
        "settings). Each database seeded with `python example/manage.py seed_demo --scale N`, then "
        "`VACUUM (ANALYZE)`:",
        "", "| database | rows in all | size | seeded in |", "|---|---|---|---|",
    ]
    for label in labels:
        rows, size, secs = seeded[label]
        name = f"`--scale {label.replace(',', '')}`"
        name = "seed document's scale (no `--scale`)" if label == small else name
        lines.append(f"| {name} | {rows:,} | {size / 2**20:,.0f} MiB | {secs:.1f} s |")
    lines += [
        "",
        "Commands, each with the environment of tests/support.py `base_env`, wall time start to exit:",
        "",
        "- **kit j1 / kit j2**: `./production_migrate.sh verify-data --json --jobs 1` / `--jobs 2`",
        "- **psql**: `psql -X -At -v ON_ERROR_STOP=1 -f verify.sql`, one connection, the statements in "
        "turn (PostgreSQL's default parallel query on for both), with `verify.sql`:",
        "",
        "```sql",
        script().rstrip(),
        "```",
        "",
        "The script checks what the kit checks on the demo: the kit's `--json` was parsed after every run "
        "and had to list exactly these 12 relations (every foreign key and both sides of every auto-created "
        "many-to-many table of the managed models, contrib's included), nothing unchecked, and the same "
        "numbers as the script (counts, 0 orphans, the duplicates, 0 invalid indexes, 0 NOT VALID "
        "constraints). The kit does more per statement (up to five example keys per finding, a "
        "`statement_timeout`, the catalog reads for missing tables and columns, unenforced unique "
        "declarations: none on the demo). One untimed run of each command warmed the cache; then "
        f"{args.runs} timed runs, the order of the three rotating from run to run.",
        "",
        "**The kit's time includes its fixed start-up**: one Python process (the gate's checks of the "
        "command, its options and the required variables, then the core in the same process), Django's "
        "set-up, the migrations' state, preflight and connections. It is measured "
        f"as the same command on the database at the seed document's scale ({args.fixed_runs} runs; its "
        f"queries over {seeded[small][0]:,} rows take milliseconds, so this is slightly more than the "
        "start-up alone); psql's is measured the same way. The tables give every figure with it, and "
        "with each command's fixed time subtracted (n/a where what is left is within the start-up's "
        "run-to-run spread). The kit runs without PYTHONDONTWRITEBYTECODE: the untimed run leaves the "
        "kit's and the demo's bytecode, as an installed program has it.",
        "",
        "## Fixed start-up (seed document's scale)",
        "",
        "| command | median | runs (s) |",
        "|---|---|---|",
    ]
    lines += [f"| {arm} | **{fixed[arm]:.3f} s** | {vals(times[small][arm])} |" for arm in ARMS]
    for label in big:
        t = times[label]
        lines += [
            "", f"## {seeded[label][0]:,} rows (`--scale {label.replace(',', '')}`)", "",
            "| command | median | runs (s) | median without fixed start-up |", "|---|---|---|---|",
        ]
        lines += [f"| {arm} | **{med(t[arm]):.3f} s** | {vals(t[arm])} | {med(t[arm]) - fixed[arm]:.3f} s |"
                  for arm in ARMS]
        lines += ["", f"| ratio kit / psql (target ≤ {TARGET}) | with start-up | without start-up |",
                  "|---|---|---|"]
        for arm in ARMS[:2]:
            with_ = med(t[arm]) / med(t["psql"])
            without = quotient(med(t[arm]) - fixed[arm], med(t["psql"]) - fixed["psql"])
            lines.append(f"| {arm} / psql | **{with_:.3f}** — {verdict(with_ <= TARGET)} | " + (
                "n/a" if without is None else f"**{without:.3f}** — {verdict(without <= TARGET)}") + " |")
    rows_growth = seeded[big[1]][0] / seeded[big[0]][0]
    lines += [
        "", f"## Growth from {big[0]} to {big[1]} (rows × {rows_growth:.2f})", "",
        "Linear or better: the time grows by at most the rows' factor, judged without the fixed start-up "
        "(with it, any command looks better than linear). psql's growth, the same SQL's, is the reference "
        "for what the database itself does.", "",
        "| command | with start-up | without start-up | without, relative to psql's | linear or better |",
        "|---|---|---|---|---|",
    ]
    grown = {arm: quotient(med(times[big[1]][arm]) - fixed[arm], med(times[big[0]][arm]) - fixed[arm])
             for arm in ARMS}
    for arm in ARMS:
        grow, ref, k = grown[arm], grown["psql"], rows_growth
        rel = f"{grow / ref:.2f}" if grow and ref else "n/a"
        lines.append(f"| {arm} | × {med(times[big[1]][arm]) / med(times[big[0]][arm]):.2f} | " + (
            "n/a | n/a | n/a |" if grow is None else f"× {grow:.2f} | {rel} | {verdict(grow <= k)} |"))
    spread = max(max(times[small][a]) - min(times[small][a]) for a in ARMS[:2])
    part = min(med(times[big[0]][a]) - fixed[a] for a in ARMS[:2])
    if spread > part:
        lines += ["", f"Caution: the kit's start-up runs spread over {spread:.3f} s, more than its data part "
                  f"at {big[0]} rows ({part:.3f} s): its growth without start-up is uncertain by that much."]
    lines += ["", "Reproduce: `.venv/bin/python bench/bench_verify.py` (writes this file; the "
              "10,000,000-row seed takes a few minutes).", ""]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")


def vals(xs: list[float]) -> str:
    return ", ".join(f"{x:.3f}" for x in xs)


def quotient(a: float, b: float) -> float | None:
    """a / b, None when either is not above zero (a difference lost in the start-up's noise)."""
    return a / b if a > 0 and b > 0 else None


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


if __name__ == "__main__":
    sys.exit(main())
