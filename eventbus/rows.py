"""Writing back the rows a batch has read and changed: one parameterised UPDATE, run once per row.

Django's `bulk_update` builds a `CASE WHEN` per field and row and resolves every one of them: for 20 of
the dashboard's order cards that is 13.6 ms of CPU, more than the rest of the batch. `executemany` of one
`UPDATE ... WHERE pk = %s` costs 0.3 ms (docs/performance.md, change 9). An upsert
(`bulk_create(update_conflicts=True)`) costs 0.5 ms, but it calls `pre_save(add=True)`, which rewrites
the `auto_now_add` fields of the objects in memory.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections
from django.db.models import Model


def update_rows(objs: Iterable[Model], fields: list[str], *, using: str) -> None:
    """Save `fields` of each object (all of one model) by primary key; `auto_now` fields get now, as in `save()`."""
    objs = list(objs)
    if not objs:
        return
    meta = type(objs[0])._meta
    connection = connections[using]
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    # Only identifiers from the model's own metadata are formatted in; every value is a parameter.
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    rows = [
        [field.get_db_prep_save(field.pre_save(obj, add=False), connection) for field in columns]
        + [meta.pk.get_db_prep_save(obj.pk, connection)]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
