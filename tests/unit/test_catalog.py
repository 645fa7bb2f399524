"""pg/catalog.py: how a database's state is compared with a backup's metadata (pure parts)."""

from migration_tools.pg.catalog import (
    Snapshot,
    count_differences,
    differences,
    migration_differences,
    table_key,
    writes_since,
)

COUNTS = {"public.users_user": 3, "public.medications_doselog": 120_000, "public.security_event": 0}
APPLIED = [("users", "0001_initial"), ("medications", "0001_initial"), ("medications", "0002_dose")]


def test_table_key():
    assert table_key("public", "users_user") == "public.users_user"


def test_snapshot_rows_is_the_total_of_every_table():
    assert Snapshot(COUNTS, APPLIED).rows == 120_003
    assert Snapshot({}, []).rows == 0


def test_equal_counts_have_no_differences():
    assert count_differences(COUNTS, dict(reversed(COUNTS.items()))) == []


def test_count_differences_name_missing_and_extra_tables_then_counts_with_separators():
    found = {"public.users_user": 2, "public.medications_doselog": 1_234_567, "public.new_table": 1}
    assert count_differences(COUNTS, found) == [
        "tables missing: public.security_event",
        "tables not in the backup: public.new_table",
        "public.medications_doselog has 1,234,567 rows, the backup 120,000",
        "public.users_user has 2 rows, the backup 3",
    ]


def test_count_differences_name_at_most_five_tables_sorted():
    expected = {f"public.t{i}": 0 for i in range(8)}
    assert count_differences(expected, {}) == [
        "tables missing: public.t0, public.t1, public.t2, public.t3, public.t4"
    ]


def test_same_migrations_in_another_order_are_no_difference():
    assert migration_differences(APPLIED, list(reversed(APPLIED))) == ""


def test_migration_differences_name_missing_and_extra():
    found = [("users", "0001_initial"), ("medications", "0001_initial"), ("users", "0002_email")]
    assert migration_differences(APPLIED, found) == (
        "applied migrations differ from the backup's (missing medications.0002_dose; extra users.0002_email)"
    )


def test_migration_differences_only_missing():
    assert migration_differences(APPLIED, APPLIED[:1]) == (
        "applied migrations differ from the backup's "
        "(missing medications.0001_initial, medications.0002_dose)"
    )


def test_migration_differences_name_at_most_three():
    extra = [("app", f"000{i}") for i in range(1, 6)]
    assert migration_differences([], extra) == (
        "applied migrations differ from the backup's (extra app.0001, app.0002, app.0003)"
    )


def test_differences_of_a_matching_snapshot_is_empty():
    assert differences(Snapshot(dict(COUNTS), list(APPLIED)), COUNTS, APPLIED) == []


def test_differences_lists_counts_then_migrations():
    snap = Snapshot({**COUNTS, "public.users_user": 4}, APPLIED[:2])
    assert differences(snap, COUNTS, APPLIED) == [
        "public.users_user has 4 rows, the backup 3",
        "applied migrations differ from the backup's (missing medications.0002_dose)",
    ]


def test_differences_with_only_a_migration_difference():
    assert differences(Snapshot(COUNTS, APPLIED[:2]), COUNTS, APPLIED) == [
        "applied migrations differ from the backup's (missing medications.0002_dose)"
    ]


def test_writes_since_counts_what_others_wrote_minus_our_own():
    before = {"public.users_user": 10, "public.medications_doselog": 500}
    now = {"public.users_user": 14, "public.medications_doselog": 520, "public.new_table": 2}
    own = {"public.medications_doselog": 20}
    assert writes_since(before, now, own) == {"public.users_user": 4, "public.new_table": 2}


def test_writes_since_is_empty_when_only_we_wrote():
    assert writes_since({"public.users_user": 10}, {"public.users_user": 13}, {"public.users_user": 3}) == {}


def test_writes_since_is_unknown_when_a_counter_went_backwards():
    before = {"public.users_user": 10, "public.t": 0}
    assert writes_since(before, {"public.users_user": 0, "public.t": 5}, {}) is None
