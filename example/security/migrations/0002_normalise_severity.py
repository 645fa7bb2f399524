"""Pending: store severities in upper case (LOW, MEDIUM, HIGH, CRITICAL).

Data migration with a reverse function: forwards upper-cases existing rows,
backwards lower-cases them again, so the migration is fully reversible.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models.functions import Lower, Upper


def upper_case_severity(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    security_event = apps.get_model("security", "SecurityEvent")
    security_event.objects.using(schema_editor.connection.alias).update(
        severity=Upper("severity")
    )


def lower_case_severity(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    security_event = apps.get_model("security", "SecurityEvent")
    security_event.objects.using(schema_editor.connection.alias).update(
        severity=Lower("severity")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(upper_case_severity, reverse_code=lower_case_severity),
        migrations.AlterField(
            model_name="securityevent",
            name="severity",
            field=models.CharField(
                choices=[
                    ("LOW", "Low"),
                    ("MEDIUM", "Medium"),
                    ("HIGH", "High"),
                    ("CRITICAL", "Critical"),
                ],
                default="LOW",
                max_length=10,
            ),
        ),
    ]
