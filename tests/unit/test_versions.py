"""pg/versions.py: which servers the pre-flight refuses, warns about or accepts."""

import pytest

from migration_tools.pg.versions import django_minimum, server_support


@pytest.mark.parametrize("num", [140000, 140002, 140003])
def test_14_0_to_14_3_warn_about_concurrent_index_builds(num):
    level, text = server_support(num, "5.2.9", 14)
    assert level == "warn"
    assert text.startswith(f"PostgreSQL 14.{num % 10000} can corrupt an index built or rebuilt CONCURRENTLY")
    assert "upgrade to 14.4 or later" in text


def test_14_4_is_past_the_index_bug_but_untested():
    assert server_support(140004, "5.2.9", 14) == (
        "warn", "PostgreSQL 14.4: the kit is tested on PostgreSQL 15, 16 and 18, not 14"
    )


@pytest.mark.parametrize("num", [150015, 160002, 180006])
def test_tested_majors_are_ok(num):
    level, text = server_support(num, "6.0.10", 14)
    assert level == "ok" and text.endswith("with Django 6.0.10 (tested)")


@pytest.mark.parametrize("num", [170007, 190000])
def test_untested_majors_warn(num):
    assert server_support(num, "5.2.9", 14)[0] == "warn"


def test_below_djangos_minimum_is_refused_naming_the_supported_range():
    assert server_support(130012, "6.0.10", 14) == (
        "fail",
        "PostgreSQL 13.12 is not supported: with Django 6.0.10 the kit supports PostgreSQL 14 and "
        "newer (tested on 15, 16 and 18)",
    )


def test_the_kits_own_floor_holds_when_django_allows_older():
    level, text = server_support(120020, "4.2.30", 12)  # Django 4.2 itself runs on PostgreSQL 12
    assert level == "fail" and "supports PostgreSQL 14 and newer" in text


def test_djangos_minimum_is_read_from_its_backend():
    import django

    expected = 12 if django.VERSION[:2] < (5, 0) else 13 if django.VERSION[:2] < (5, 2) else 14
    assert django_minimum() == expected
