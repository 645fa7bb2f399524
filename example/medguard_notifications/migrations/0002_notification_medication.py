"""Pending: link notifications to the medication they are about (new cross-app FK)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("medguard_notifications", "0001_initial"),
        ("medications", "0002_medication_is_active"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="medication",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="notifications",
                to="medications.medication",
            ),
        ),
    ]
