"""Pending: NOT NULL ``timezone`` column on the existing users table.

Existing rows get the default; Django adds the column with a DEFAULT and then
drops the database default again.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_user_phone_number"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="timezone",
            field=models.CharField(default="Africa/Johannesburg", max_length=64),
        ),
    ]
