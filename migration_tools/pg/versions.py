"""Which PostgreSQL servers the kit works on, as a rule of the server's and Django's versions.

The floor is the higher of the kit's own (PostgreSQL 14: DROP DATABASE ... WITH (FORCE), the
statistics the undo compares) and the Django release's (`minimum_database_version` of its
PostgreSQL backend: 12 for Django 4.2, 14 for Django 5.2 and 6.0). Below it the pre-flight
refuses. The versions the test matrix runs (bench/results/matrix.md) are TESTED; another major
is a warning, and so are 14.0 to 14.3, whose concurrent index builds can corrupt the index.
"""

from __future__ import annotations

from typing import Literal

KIT_MINIMUM = 14
TESTED_MAJORS = (15, 16, 18)
CONCURRENT_INDEX_BUG = (140000, 140004)  # 14.0 <= version < 14.4

Level = Literal["ok", "warn", "fail"]


def describe(server_version_num: int) -> str:
    """140003 -> '14.3' (PostgreSQL 10 and later: major * 10000 + minor)."""
    return f"{server_version_num // 10000}.{server_version_num % 10000}"


def tested() -> str:
    return ", ".join(str(m) for m in TESTED_MAJORS[:-1]) + f" and {TESTED_MAJORS[-1]}"


def django_minimum() -> int:
    """The oldest PostgreSQL major the installed Django supports."""
    from django.db.backends.postgresql.features import DatabaseFeatures

    minimum = DatabaseFeatures.minimum_database_version or (KIT_MINIMUM,)
    return int(minimum[0])


def server_support(server_version_num: int, django: str, django_min: int) -> tuple[Level, str]:
    """(level, what to tell the operator) for this server with this Django."""
    version = describe(server_version_num)
    major = server_version_num // 10000
    floor = max(KIT_MINIMUM, django_min)
    if major < floor:
        return "fail", (
            f"PostgreSQL {version} is not supported: with Django {django} the kit supports "
            f"PostgreSQL {floor} and newer (tested on {tested()})"
        )
    low, high = CONCURRENT_INDEX_BUG
    if low <= server_version_num < high:
        return "warn", (
            f"PostgreSQL {version} can corrupt an index built or rebuilt CONCURRENTLY while rows "
            "change; upgrade to 14.4 or later before such a migration, and check indexes built "
            "on 14.0 to 14.3 with amcheck"
        )
    if major not in TESTED_MAJORS:
        return "warn", f"PostgreSQL {version}: the kit is tested on PostgreSQL {tested()}, not {major}"
    return "ok", f"PostgreSQL {version} with Django {django} (tested)"
