"""zerodowntime/build_memory.py: which statements build an index concurrently, and the memory and
workers their validation is given; INDEX_BUILD_MEMORY read strictly."""

import pytest

from migration_tools.core.errors import BadInput
from migration_tools.zerodowntime.build_memory import built_relation, needed_kb, workers_allowed
from migration_tools.zerodowntime.settings import ZeroDowntimeSettings


def test_only_concurrent_builds_are_recognised_with_the_relation_they_name():
    assert built_relation('CREATE INDEX CONCURRENTLY IF NOT EXISTS "i" ON "medications_doselog" ("a");') \
        == ('"medications_doselog"', False)
    assert built_relation('CREATE UNIQUE INDEX CONCURRENTLY u ON "Sales"."Order" (ref)') \
        == ('"Sales"."Order"', False)
    assert built_relation('REINDEX INDEX CONCURRENTLY "i"') == ('"i"', True)
    assert built_relation("REINDEX TABLE CONCURRENTLY t") == ('"t"', False)
    for other in ('CREATE INDEX "i" ON "t" ("a")', "REINDEX INDEX i", "DROP INDEX CONCURRENTLY i",
                  'ALTER TABLE "t" VALIDATE CONSTRAINT "c"', "CREATE INDEX CONCURRENTLY i ON t (a); SELECT 1",
                  "not sql at all"):
        assert built_relation(other) is None, other


def test_the_memory_holds_every_entry_and_the_workers_stay_as_before():
    assert needed_kb(-1) == needed_kb(0) == 16 * 1024
    assert needed_kb(8_000_000) == 16 * 1024 + 234_375  # 8M entries of 24 bytes, a quarter more: 245 MB
    assert workers_allowed(64 * 1024, 2) == 1  # the default 64 MB: 32 MB each for the leader and one worker
    assert workers_allowed(1024, 2) == 0
    assert workers_allowed(1024 * 1024, 2) == 2
    assert workers_allowed(1024 * 1024, 0) == 0


def test_index_build_memory_is_a_number_of_megabytes():
    assert ZeroDowntimeSettings.from_kit({}).index_build_memory == 1024
    assert ZeroDowntimeSettings.from_kit({"INDEX_BUILD_MEMORY": 0}).index_build_memory == 0
    assert ZeroDowntimeSettings.from_kit({"INDEX_BUILD_MEMORY": 256}).index_build_memory == 256
    for wrong in (-1, "1GB", float("nan"), True):
        with pytest.raises(BadInput, match=r"INDEX_BUILD_MEMORY.\] is .*, not a number of megabytes"):
            ZeroDowntimeSettings.from_kit({"INDEX_BUILD_MEMORY": wrong})
