"""The online learner's checkpoints now belong to recommendations (its migration 0002 took over the table)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0002_event_body_hash"),
        ("recommendations", "0002_onlinecheckpoint_from_events"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OnlineCheckpoint")],
            database_operations=[],
        ),
    ]
