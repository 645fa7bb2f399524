"""Released: soft-delete flag for discontinued medications."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("medications", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="medication",
            name="is_active",
            field=models.BooleanField(default=True),
        ),
    ]
