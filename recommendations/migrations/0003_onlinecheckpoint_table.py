"""The checkpoints' table takes this app's name (rows and ids kept)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("recommendations", "0002_onlinecheckpoint_from_events"),
        ("events", "0003_onlinecheckpoint_to_recommendations"),
    ]

    operations = [
        migrations.AlterModelTable(name="onlinecheckpoint", table=None),
    ]
