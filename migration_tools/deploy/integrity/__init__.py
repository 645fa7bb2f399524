"""verify-data's checks: counts, orphans per relation, duplicates, schema health, losses since a backup.

Kept free of imports so that a project may list this package in INSTALLED_APPS (apps.py) to have
`manage.py check` validate its MIGRATION_KIT dict.
"""
