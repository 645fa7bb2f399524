"""Production-safe migration kit for Django on PostgreSQL."""

import os

__version__ = "0.1.0"

# The TZ the process started with, before Django's set-up replaces it with settings.TIME_ZONE:
# tools that name things by local time (pgBackRest's backup labels) run with this one, so their
# names sort with those the operator's own runs make.
STARTUP_TZ = os.environ.get("TZ")
