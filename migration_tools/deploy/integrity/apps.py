"""The kit's settings check as a Django app: INSTALLED_APPS += ["migration_tools.deploy.integrity"]."""

from __future__ import annotations

from django.apps import AppConfig


class MigrationKitChecks(AppConfig):
    name = "migration_tools.deploy.integrity"
    label = "migration_kit"
    verbose_name = "Migration kit checks"

    def ready(self) -> None:
        from migration_tools.deploy.integrity import settings_check  # noqa: F401  (registers the check)
