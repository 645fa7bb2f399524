"""The demo's production settings with django-pg-zero-downtime-migrations' engine, as its README
recommends, for bench_zero_downtime.py's "library" arm only."""

from medguard_backend.settings.production import *  # noqa: F403
from medguard_backend.settings.production import DATABASES

DATABASES["default"]["ENGINE"] = "django_zero_downtime_migrations.backends.postgres"
ZERO_DOWNTIME_MIGRATIONS_LOCK_TIMEOUT = "2s"
ZERO_DOWNTIME_MIGRATIONS_STATEMENT_TIMEOUT = "2s"
ZERO_DOWNTIME_MIGRATIONS_FLEXIBLE_STATEMENT_TIMEOUT = True
ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = False
