"""GIN index for keyword search, on PostgreSQL only (SQLite uses the portable fallback)."""

from django.db import migrations

INDEX = "catalog_movie_search_gin"
# Same expression Django compiles for catalog.search.search_vector(), so the planner can use the index.
EXPRESSION = (
    "(((setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, COALESCE(search_text, '')), 'B')) || "
    "setweight(to_tsvector('english'::regconfig, COALESCE(overview, '')), 'C')))"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_movie USING gin ({EXPRESSION})")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(create_index, drop_index)]
