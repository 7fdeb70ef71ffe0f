"""Typo-tolerant title search on PostgreSQL: the pg_trgm extension and a trigram GIN index on titles.

Only on PostgreSQL, and only where the server ships pg_trgm (contrib): elsewhere search falls back to scoring titles
in Python (catalog.fuzzy), so this migration is a no-op on SQLite and on a server without the extension.
"""

from django.db import migrations

INDEX = "catalog_movie_title_trgm"


def _available(schema_editor) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


def create(apps, schema_editor):
    if _available(schema_editor):  # what django.contrib.postgres.operations.TrigramExtension runs, when it can
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_movie USING gin (title gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the extension stays: others may use it


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_rating_user_time_index")]
    operations = [migrations.RunPython(create, drop)]
