"""`python manage.py migrate_setup`: `migrate`, with dj-stripe's tables created in one step on a fresh database.

dj-stripe's three migrations hold ~600 schema operations (523 in ``0002_2_10`` alone) and no data operations
(no RunPython/RunSQL). Replaying them costs ~100 s, nearly all of it Django re-rendering the interlinked model
states after each operation, while the tables they end in take about a second to create. When no dj-stripe
migration is applied yet, this command

1. applies every migration dj-stripe's depend on (the user model's app and Django's own),
2. creates dj-stripe's tables from its models (the state its migrations end in: ``makemigrations --check``, which
   CI runs, fails when they differ) and records its migrations as applied,
3. runs the ordinary ``migrate`` for everything else (project data migrations, post-migrate signals).

A database where dj-stripe is already (partly) migrated takes the ordinary ``migrate`` alone. bin/setup uses it;
CI's migration check still replays every migration with plain ``migrate``.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

APP = "djstripe"


class Command(BaseCommand):
    help = "migrate, creating dj-stripe's tables directly (instead of replaying ~600 operations) on a fresh database"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        verbosity = options["verbosity"]
        if create_app_tables(alias=alias, app_label=APP) and verbosity:
            self.stdout.write(f"{APP}: tables created from its models, migrations recorded as applied")
        call_command("migrate", database=alias, interactive=False, verbosity=verbosity)


def create_app_tables(*, alias: str, app_label: str) -> bool:
    """Create ``app_label``'s tables from its models and record its migrations, when none is applied yet.

    Returns False (and does nothing) when some migration of the app is already applied or the app has none.
    """
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    nodes = [key for key in graph.nodes if key[0] == app_label]
    if not nodes or any(key in executor.loader.applied_migrations for key in nodes):
        return False
    # everything the app's migrations depend on, outside the app, forwards only
    needed: list[tuple[str, str]] = []
    for key in nodes:
        for dep in graph.forwards_plan(key):
            if dep[0] != app_label and dep not in executor.loader.applied_migrations and dep not in needed:
                needed.append(dep)
    if needed:
        plan = [(graph.nodes[key], False) for key in needed]
        executor.migrate(needed, plan=plan)
    models = [m for m in apps.get_app_config(app_label).get_models()
              if m._meta.managed and not m._meta.proxy and not m._meta.swapped]
    with connection.schema_editor() as editor:  # FK constraints are added at the end, so order does not matter
        for model in models:
            editor.create_model(model)
    for key in sorted(nodes):
        executor.recorder.record_applied(*key)
    return True
