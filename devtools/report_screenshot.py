"""Make docs/report.png: a real full-deploy of the demo, its HTML report, a headless chromium screenshot.

    .venv/bin/python devtools/report_screenshot.py [--scale ROWS] [--out docs/report.png]

Starts a throwaway PostgreSQL (devtools/pg_server.py) in a temporary directory, seeds the demo at
its released state (`seed_demo --scale ROWS`), runs `./production_migrate.sh full-deploy --monitor`,
and screenshots the page it wrote with Debian's chromium (devtools/browser.py). Everything but the
PNG is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools import browser  # noqa: E402
from devtools.pg_server import Server, create_database  # noqa: E402

DB = "medguard_sa"


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900)
    print(done.stdout[-3000:], end="")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=300_000, help="rows seeded (default 300000)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-report-") as tmp:
        root = Path(tmp)
        server = Server(root / "pg", fast=True)
        server.start()
        try:
            create_database(server, DB)
            work = root / "work"
            work.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PG", "DJANGO_"))}
            env.update(
                server.env(DB),
                DJANGO_SETTINGS_MODULE="medguard_backend.settings.production",
                DJANGO_PROJECT_DIR=str(REPO / "example"),
                PM_PYTHON=sys.executable,
                PM_WORKDIR=str(work),
                PYTHONPATH=str(REPO),
            )
            seeded = run(
                [
                    sys.executable,
                    str(REPO / "example" / "manage.py"),
                    "seed_demo",
                    "--scale",
                    str(args.scale),
                ],
                env,
                work,
            )
            if seeded.returncode != 0:
                print(seeded.stderr, file=sys.stderr)
                return 1
            deployed = run(
                [str(REPO / "production_migrate.sh"), "full-deploy", "--monitor", "--interval", "0.5"],
                env,
                work,
            )
            pages = sorted((work / "migration_monitoring").glob("report_*.html"))
            if deployed.returncode != 0 or not pages:
                print(deployed.stderr, file=sys.stderr)
                return 1
            args.out.parent.mkdir(parents=True, exist_ok=True)
            console = browser.screenshot(pages[-1], args.out, height=2250)
            if console:
                print("console messages:", *console, sep="\n  ", file=sys.stderr)
                return 1
            shutil.copy(pages[-1], root / "kept.html")
            print(f"{args.out} from {pages[-1].name} ({pages[-1].stat().st_size:,} bytes)")
        finally:
            server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
