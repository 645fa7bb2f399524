"""Pending: index the dose-log schedule (the largest table) for the reminder queries.

A plain CREATE INDEX: it blocks writes to medications_doselog while it builds.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("medications", "0002_medication_is_active"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="doselog",
            index=models.Index(fields=["scheduled_at"], name="doselog_scheduled_at_idx"),
        ),
    ]
