"""The pgBackRest tier at scale: backup, incremental backup and point-in-time rollback, kit against plain
pgBackRest, and against the pg_dump tiers, in one run. By hand:

    .venv/bin/python bench/bench_pgbackrest.py                       # 10M-row seed, writes results
    .venv/bin/python bench/bench_pgbackrest.py --scale 200000 --no-write

One throwaway PostgreSQL (fsync on) whose WAL a real pgBackRest archives into a local repository
(devtools/pg_backrest.py), the demo seeded with `manage.py seed_demo --scale N`; then, each step a
whole process (the plain restores: the processes an operator would run), wall clock:

    backup     pg_dump -Fc -Z9 -f FILE; pg_dump -Fd -Z9 -j2 -f DIR
               pgbackrest --type=full backup;  kit: ./production_migrate.sh backup  (BACKUP_TYPE full)
    release    UPDATE medications_doselog SET notes = ... WHERE id % 10 = 0   (one table touched)
    incr       pgbackrest --type=incr backup;  kit: ./production_migrate.sh backup  (BACKUP_TYPE incr)
    restore    createdb + pg_restore -j2 -d NEW FILE (the -Fc dump)
               kit: rollback_manager.py rollback <the full backup's restore point> --yes
                    (safety backup, stop, pgbackrest restore --delta, start, recovery, verification)
               the release applied again, then plain: stop; pgbackrest restore --delta --set=LABEL
                    --type=name --target=POINT --target-timeline=current --target-action=promote;
                    start; wait until out of recovery
Writes bench/results/pgbackrest.md (bench/pgbackrest_report.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pgbackrest_report import render
from bench.pgbackrest_steps import measure
from bench.scale_common import REPO, bench_main

RESULTS = REPO / "bench" / "results" / "pgbackrest.md"


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, __doc__, "bench/bench_pgbackrest.py", RESULTS, measure, render)


if __name__ == "__main__":
    sys.exit(main())
