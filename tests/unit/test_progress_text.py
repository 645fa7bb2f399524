"""What the progress display says, from what PostgreSQL's progress views report (no database)."""

from __future__ import annotations

from migration_tools.cli.progress import Status
from migration_tools.cli.progress_display import Rate, clock
from migration_tools.pg.progress import INDEX_RE, Activity, CopyTally, _relation


def copy(relation: str, done: int, phase: str = "COPY TO") -> Activity:
    return Activity("copy", 1, "db", relation, phase, done, None, None, True)


def test_an_index_build_reads_as_the_issue_shows_it():
    building = Activity(
        "create_index",
        7,
        "db",
        "public.medications_doselog",
        "building index: scanning table",
        43,
        100,
        None,
        False,
        "doselog_scheduled_at_idx",
    )
    assert building.describe() == "building doselog_scheduled_at_idx: scanning table"
    assert building.fraction == 0.43


def test_index_names_come_from_the_statement_even_uncommitted():
    assert (
        _relation(
            "?",
            'CREATE INDEX "medications_doselog_scheduled_at_idx" ON "medications_doselog" ("scheduled_at")',
            INDEX_RE,
        )
        == "medications_doselog_scheduled_at_idx"
    )
    assert (
        _relation("?", "ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);", INDEX_RE)
        == "t_pkey"
    )
    assert _relation("an index of public.t", "REINDEX TABLE t", INDEX_RE) == "an index of public.t"


def test_a_dump_counts_tables_in_name_order_and_rows_as_they_come():
    tally = CopyTally("dump", {"public.a": 10, "public.b": 1000, "public.c": 90})
    tally.update([copy("public.b", 400)])
    assert tally.describe() == "pg_dump: 1 of 3 tables done, 410 of ~1,100 rows (now public.b)"
    tally.update([copy("public.c", 45)])
    assert (len(tally.finished), tally.rows_done) == (2, 1055)
    assert tally.fraction is not None and round(tally.fraction, 3) == 0.959


def test_a_restore_ignores_the_dumps_copies():
    tally = CopyTally("restore", {"public.a": 10})
    assert tally.update([copy("public.a", 5)]) is False
    assert tally.update([copy("public.a", 5, "COPY FROM")]) is True


def test_the_plain_line_has_elapsed_time_and_an_estimate_once_it_moves():
    rate = Rate()
    first = rate.describe(Status("k", "pg_dump: x", 0.25, 25, "rows"))
    assert first == "progress: pg_dump: x; 25% (elapsed 0:00:00)"
    rate.first = (rate.first[0] - 10, 0.25, 25)  # as if ten seconds had passed since
    later = rate.describe(Status("k", "pg_dump: x", 0.5, 50, "rows"))
    assert later.startswith("progress: pg_dump: x; 50% (elapsed 0:00:00, 2 rows/s, ETA 0:00:")
    assert "\r" not in later and "\x1b" not in later
    assert clock(3725) == "1:02:05"
