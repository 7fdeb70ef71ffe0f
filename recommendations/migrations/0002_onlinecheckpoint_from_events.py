"""The online learner's checkpoints move from events to recommendations (issue 16: one owner for the loop).

State only here: the model now belongs to this app and keeps its table and rows; events 0003 drops it from the
events state, and 0003 here renames the table to this app's name.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("recommendations", "0001_initial"),
        ("events", "0002_event_body_hash"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OnlineCheckpoint",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("state", models.BinaryField()),
                        ("events_applied", models.PositiveIntegerField(default=0)),
                        ("report", models.JSONField(blank=True, default=dict,
                                                    help_text="guardrail outcome of this batch")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"ordering": ["-id"], "get_latest_by": "id", "db_table": "events_onlinecheckpoint"},
                ),
            ],
            database_operations=[],
        ),
    ]
