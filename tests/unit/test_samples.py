"""deploy/samples.py Sample.line(): one monitoring line, as the seed's log shows it."""

from datetime import datetime

from migration_tools.deploy.samples import MB, DbSample, Sample

AT = datetime(2024, 1, 15, 14, 30, 25)


def sample(**changes):
    values = {"at": AT, "cpu": 45.2, "mem": 67.8, "disk": 23.1, "read_bytes": None, "write_bytes": None,
              "db": None}
    values.update(changes)
    return Sample(**values)


def test_the_machine_part_alone_is_the_seed_format():
    assert sample().line() == "[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%"


def test_percentages_have_one_decimal():
    assert sample(cpu=5, mem=99.96, disk=0.04).line() == (
        "[2024-01-15 14:30:25] CPU: 5.0%, MEM: 100.0%, DISK: 0.0%"
    )


def test_the_database_part():
    assert sample(db=DbSample(connections=12, lock_waits=3), db_expected=True).line() == (
        "[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%, DB_CONN: 12, LOCK_WAITS: 3"
    )


def test_a_database_that_could_not_be_sampled_says_so():
    assert sample(db_expected=True).line() == (
        "[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%, DB: unavailable"
    )


def test_io_in_megabytes():
    assert sample(read_bytes=0, write_bytes=MB // 5).line() == (
        "[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%, READ: 0.0MB, WRITE: 0.2MB"
    )


def test_everything_as_the_readme_example():
    line = Sample(datetime(2026, 11, 25, 18, 25, 49), 59.1, 3.0, 22.3, 12_000, 220_000, DbSample(1, 0)).line()
    assert line == (
        "[2026-11-25 18:25:49] CPU: 59.1%, MEM: 3.0%, DISK: 22.3%, DB_CONN: 1, LOCK_WAITS: 0, "
        "READ: 0.0MB, WRITE: 0.2MB"
    )


def test_io_is_left_out_unless_both_counters_are_known():
    assert sample(read_bytes=5 * MB).line() == "[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%"
    assert sample(write_bytes=5 * MB).line() == "[2024-01-15 14:30:25] CPU: 45.2%, MEM: 67.8%, DISK: 23.1%"
