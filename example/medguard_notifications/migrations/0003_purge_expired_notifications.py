"""Pending: purge notifications whose ``expires_at`` has passed.

IRREVERSIBLE: the deleted rows cannot be recreated, so there is no reverse_code and
unapplying this migration raises IrreversibleError. Restore from a backup instead.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone


def purge_expired_notifications(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    notification = apps.get_model("medguard_notifications", "Notification")
    notification.objects.using(schema_editor.connection.alias).filter(
        expires_at__lt=timezone.now()
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("medguard_notifications", "0002_notification_medication"),
    ]

    operations = [
        migrations.RunPython(purge_expired_notifications),
    ]
