"""Admin base classes every app may use (apex_site helpers: no app imports)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the system: viewable and filterable, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BoundedCountPaginator(Paginator):
    """A list page's paginator that never counts a whole large table.

    It counts at most ``count_cap`` + 1 rows (``SELECT COUNT(*) FROM (… LIMIT n)``). Past the cap, an
    unfiltered list on PostgreSQL takes the planner's row estimate (``pg_class.reltuples``), so every page
    stays reachable; a filtered one shows the first ``count_cap`` rows' pages (narrow the filter to see more).
    """

    count_cap = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):
            return super().count
        bounded = rows[: self.count_cap + 1].count()
        if bounded <= self.count_cap:
            return bounded
        return max(_estimated_rows(rows), self.count_cap)


def _estimated_rows(rows: QuerySet[Any]) -> int:
    """The planner's estimate of an unfiltered table's rows (PostgreSQL), else 0."""
    connection = connections[rows.db]
    if connection.vendor != "postgresql" or rows.query.where:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [rows.model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else 0
