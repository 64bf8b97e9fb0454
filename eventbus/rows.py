"""Rows written and read on every batch, with SQL built once instead of by the ORM on every call.

A consumer's batch of a few events spends most of its CPU compiling queries, not running them: Django builds
and resolves every `filter()`, `create()` and `bulk_update()` afresh (about 0.1 ms each, and `bulk_update`'s
`CASE WHEN` per field and row costs 13.6 ms for 20 of the dashboard's order cards). These helpers keep the
ORM's field conversions (`pre_save`, `get_db_prep_save`, so `auto_now` and JSON and UUID fields behave as
in `save()`) and skip the query compiler. Only identifiers from a model's own metadata are formatted into
the SQL; every value is a parameter. Figures: docs/performance.md, changes 9 and 14.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from django.db import connections
from django.db.models import Field, Model
from django.db.models.fields import AutoFieldMixin


def update_rows(objs: Iterable[Model], fields: list[str], *, using: str) -> None:
    """Save `fields` of each object (all of one model) by primary key; `auto_now` fields get now, as in `save()`.

    An upsert (`bulk_create(update_conflicts=True)`) would also be cheap, but it calls `pre_save(add=True)`,
    which rewrites the `auto_now_add` fields of the objects in memory."""
    objs = list(objs)
    if not objs:
        return
    model, connection = type(objs[0]), connections[using]
    columns = [model._meta.get_field(name) for name in fields]
    pk = model._meta.pk
    rows = [
        [field.get_db_prep_save(field.pre_save(obj, add=False), connection) for field in columns]
        + [pk.get_db_prep_save(obj.pk, connection)]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_sql("update", model, tuple(fields), connection), rows)


def insert_rows(objs: Iterable[Model], *, using: str) -> None:
    """INSERT new objects (all of one model) with every concrete field but an auto-increment primary key,
    which the objects do not learn. `auto_now_add` and defaults apply as in `save()`."""
    objs = list(objs)
    if not objs:
        return
    model, connection = type(objs[0]), connections[using]
    fields = _insert_fields(model)
    rows = [[field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields] for obj in objs]
    with connection.cursor() as cursor:
        cursor.executemany(_sql("insert", model, (), connection), rows)


def add_to_rows(model: type[Model], field_name: str, amounts: dict, *, using: str) -> list:
    """Add each amount to `field_name` of the row whose primary key is its key, in key order (so two
    writers lock shared rows in the same order); return the keys that have no row."""
    connection, pk = connections[using], model._meta.pk
    sql = _sql("add", model, (field_name,), connection)
    missing = []
    with connection.cursor() as cursor:
        for key, amount in sorted(amounts.items()):
            if amount:
                cursor.execute(sql, [amount, pk.get_db_prep_value(key, connection)])
                if cursor.rowcount == 0:
                    missing.append(key)
    return missing


def present_values(model: type[Model], field_name: str, candidates: list, *, using: str, **equal) -> set[str]:
    """Which of `candidates` are stored in `field_name` of the rows whose other fields equal `equal`, as
    strings (e.g. the event ids an inbox already holds for a group)."""
    if not candidates:
        return set()
    connection, meta = connections[using], model._meta
    field, quote = meta.get_field(field_name), connection.ops.quote_name
    where = [f"{quote(meta.get_field(name).column)} = %s" for name in equal]
    where.append(f"{quote(field.column)} IN ({', '.join(['%s'] * len(candidates))})")
    sql = f"SELECT {quote(field.column)} FROM {quote(meta.db_table)} WHERE {' AND '.join(where)}"  # noqa: S608
    params = [meta.get_field(name).get_db_prep_value(value, connection) for name, value in equal.items()]
    params += [field.get_db_prep_value(value, connection) for value in candidates]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(field.to_python(value)) for (value,) in cursor.fetchall()}


@cache
def _insert_fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin)))


_statements: dict[tuple, str] = {}


def _sql(kind: str, model: type[Model], fields: tuple[str, ...], connection) -> str:
    key = (kind, model, fields, connection.vendor)
    if key not in _statements:
        meta, quote = model._meta, connection.ops.quote_name
        if kind == "update":
            assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
            sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
        elif kind == "add":
            column = quote(meta.get_field(fields[0]).column)
            sql = f"UPDATE {quote(meta.db_table)} SET {column} = {column} + %s WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
        else:
            columns = [quote(f.column) for f in _insert_fields(model)]
            values = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608
        _statements[key] = sql
    return _statements[key]
