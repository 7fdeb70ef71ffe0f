"""Fast multi-row updates: one parametrised UPDATE run with executemany (Django's bulk_update builds a huge CASE)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def bulk_update_fast(objs: Sequence[models.Model], fields: list[str], *, batch_size: int = 2000) -> int:
    """UPDATE each object's `fields` by primary key (values prepared by the fields); returns the row count."""
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    sql = (f"UPDATE {quote(meta.db_table)} SET " + ", ".join(f"{quote(f.column)} = %s" for f in columns)
           + f" WHERE {quote(meta.pk.column)} = %s")
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            rows = [[f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] + [obj.pk]
                    for obj in objs[start:start + batch_size]]
            cursor.executemany(sql, rows)
    return len(objs)
