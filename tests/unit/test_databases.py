"""pg/databases.py side names and stamps: what a rollback calls the databases it keeps beside the target."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from migration_tools.pg import databases
from migration_tools.pg.databases import (
    MAX_IDENT_BYTES,
    STAMP_LEN,
    STAMP_PATTERN,
    clip_identifier,
    new_stamp,
    side_name,
)

STAMP = "20261125_181500_ab12"
MOMENT = datetime(2026, 11, 25, 18, 15, 0, 250_000, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def no_stamps_issued(monkeypatch):
    monkeypatch.setattr(databases, "_issued", ("", set()))


def test_side_name_of_a_short_name_is_name_tag_stamp():
    assert side_name("medguard_sa", "pre_rollback", STAMP) == "medguard_sa__pre_rollback_20261125_181500_ab12"
    assert side_name("medguard_sa", "restore", "20261125_181500") == "medguard_sa__restore_20261125_181500"


def test_side_name_clips_a_long_ascii_name_to_63_bytes():
    name = side_name("d" * 80, "pre_rollback", STAMP)
    assert name == "d" * 28 + "__pre_rollback_" + STAMP
    assert len(name.encode()) == MAX_IDENT_BYTES


def test_side_name_clips_a_multibyte_name_without_splitting_a_character():
    # 63 - len("__restore_") - 20 leaves 33 bytes: eight 4-byte elephants (32), not 8¼.
    name = side_name("🐘" * 30, "restore", STAMP)
    assert name == "🐘" * 8 + "__restore_" + STAMP
    assert len(name.encode()) == 62


def test_side_name_clips_two_byte_characters_to_the_exact_room():
    # 63 - len("__pre_rollback_") - 20 leaves 28 bytes: fourteen 2-byte letters.
    name = side_name("é" * 40, "pre_rollback", STAMP)
    assert name == "é" * 14 + "__pre_rollback_" + STAMP
    assert len(name.encode()) == MAX_IDENT_BYTES


def test_side_name_of_a_name_that_just_fits_is_not_clipped():
    fits = "x" * (MAX_IDENT_BYTES - len("__rolled_back_") - len(STAMP))
    assert side_name(fits, "rolled_back", STAMP) == f"{fits}__rolled_back_{STAMP}"


@pytest.mark.parametrize(
    ("text", "room", "clipped"),
    [("abc", 10, "abc"), ("abc", 2, "ab"), ("éé", 3, "é"), ("日本", 5, "日"), ("abc", 0, ""),
     ("abc", -4, "")],
)
def test_clip_identifier(text, room, clipped):
    assert clip_identifier(text, room) == clipped


def test_new_stamp_is_the_utc_second_and_four_hex_digits():
    stamp = new_stamp(MOMENT)
    assert re.fullmatch(r"20261125_181500_[0-9a-f]{4}", stamp)
    assert re.match(STAMP_PATTERN, stamp)
    assert len(stamp) == STAMP_LEN == 20


def test_new_stamp_converts_to_utc():
    two_hours_east = timezone(timedelta(hours=2))
    assert new_stamp(datetime(2026, 11, 25, 20, 15, 0, tzinfo=two_hours_east)).startswith("20261125_181500_")


def test_two_stamps_in_the_same_second_differ():
    first, second = new_stamp(MOMENT), new_stamp(MOMENT + timedelta(milliseconds=500))
    assert first[:16] == second[:16] == "20261125_181500_"
    assert first != second


def test_new_stamp_never_repeats_even_when_the_random_part_does(monkeypatch):
    draws = iter(["ab12", "ab12", "ab12", "cd34"])
    monkeypatch.setattr(databases.secrets, "token_hex", lambda _nbytes: next(draws))
    assert new_stamp(MOMENT) == "20261125_181500_ab12"
    assert new_stamp(MOMENT) == "20261125_181500_cd34"


def test_the_same_random_part_in_another_second_is_fine(monkeypatch):
    monkeypatch.setattr(databases.secrets, "token_hex", lambda _nbytes: "ab12")
    assert new_stamp(MOMENT) == "20261125_181500_ab12"
    assert new_stamp(MOMENT + timedelta(seconds=1)) == "20261125_181501_ab12"
