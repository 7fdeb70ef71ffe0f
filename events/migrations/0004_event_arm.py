"""Event.arm_id (issue 21): the experiment arm a row was served or recorded under, and its partial index.

Adding the nullable column is instant. On PostgreSQL the index is built CONCURRENTLY (outside a transaction), so
the events table keeps taking impressions and events while it is built; elsewhere it is an ordinary index."""

from django.db import migrations, models

INDEX = models.Index(condition=models.Q(("arm_id__isnull", False)), fields=["arm_id", "kind"], name="event_arm_kind")


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS event_arm_kind ON events_event "
                              "(arm_id, kind) WHERE arm_id IS NOT NULL")
    else:
        schema_editor.add_index(apps.get_model("events", "Event"), INDEX)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS event_arm_kind")
    else:
        schema_editor.remove_index(apps.get_model("events", "Event"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("events", "0003_onlinecheckpoint_to_recommendations"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="arm_id",
            field=models.PositiveBigIntegerField(blank=True, null=True,
                                                 help_text="experiments.Arm the member was bucketed into (none: no "
                                                           "experiment)"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="event", index=INDEX)],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]
