"""Rows written and read on every batch, with SQL built once instead of by the ORM on every call.

A consumer's batch of a few events spends most of its CPU compiling queries, not running them: Django builds
and resolves every `filter()`, `create()` and `bulk_update()` afresh (about 0.1 ms each, and `bulk_update`'s
`CASE WHEN` per field and row costs 13.6 ms for 20 of the dashboard's order cards). These helpers keep the
ORM's field conversions (`pre_save`, `get_db_prep_save`, so `auto_now` and JSON and UUID fields behave as
in `save()`, and the converters the ORM applies to what the database returns) and skip the query
compiler. Only identifiers from a model's own metadata are formatted into the SQL; every value is a
parameter.

The apps call a helper only where the plain ORM costs a hop more than 10 %: each docstring's "ORM … this …"
line gives the median CPU-ms per delivered event of the hops that use it, the same recorded events replayed
through the real dispatcher with the ORM equivalent and with the helper, alternating in one process
(`bench/hop_ab.py`, batches of 5; the table and its noise are in docs/performance.md). Where the ORM was
within that (`set_on_rows` for inventory's stock marks, the read model's reads by key) the apps use the ORM;
the inbox, the outbox and the relay use these helpers whatever the apps do.
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
    which rewrites the `auto_now_add` fields of the objects in memory.

    ORM (`bulk_update`): shop 0.86, shipping 1.88, dashboard 1.68 ms; this: 0.42, 0.72, 0.43 ms per hop's
    event, measured by bench/hop_ab.py."""
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


def insert_rows(objs: Iterable[Model], *, using: str, learn_pks: bool = False) -> None:
    """INSERT new objects (all of one model) with every concrete field but an auto-increment primary key.
    `auto_now_add` and defaults apply as in `save()`. Objects that carry their primary key (a UUID default,
    a natural key) are then saved objects for the ORM; with `learn_pks`, so are objects whose key the
    database assigns, which they learn (INSERT … RETURNING, on SQLite and PostgreSQL).

    ORM (`bulk_create`): shop 0.49, inventory 0.50, shipping 0.78, dashboard 0.50 ms; this: 0.42, 0.46, 0.72,
    0.43 ms per hop's event, measured by bench/hop_ab.py (each hop 13-17 % dearer with the ORM)."""
    objs = list(objs)
    if not objs:
        return
    model, connection = type(objs[0]), connections[using]
    fields = _insert_fields(model)
    rows = [[field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields] for obj in objs]
    if learn_pks and model._meta.pk not in fields:
        if not connection.features.can_return_rows_from_bulk_insert:
            raise NotImplementedError(f"{connection.vendor} cannot return the keys of inserted rows")
        _insert_returning_pks(objs, rows, fields, connection)
        return
    with connection.cursor() as cursor:
        cursor.executemany(_sql("insert", model, (), connection), rows)
    if model._meta.pk in fields:
        for obj in objs:
            obj._state.adding, obj._state.db = False, using


def _insert_returning_pks(objs: list[Model], rows: list[list], fields: tuple[Field, ...], connection) -> None:
    """A multi-row INSERT … RETURNING the auto-increment keys, which the objects learn (in row order, as
    Django's own bulk_create relies on with SQLite and PostgreSQL)."""
    meta, quote = objs[0]._meta, connection.ops.quote_name
    size = max(1, connection.ops.bulk_batch_size(fields, objs))
    one = f"({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            chunk = rows[start : start + size]
            sql = (
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608
                f" VALUES {', '.join([one] * len(chunk))} RETURNING {quote(meta.pk.column)}"
            )
            cursor.execute(sql, [value for row in chunk for value in row])
            for obj, (pk,) in zip(objs[start : start + size], cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding, obj._state.db = False, connection.alias


def add_to_rows(model: type[Model], field_name: str, amounts: dict, *, using: str, at_most: str | None = None) -> list:
    """Add each amount to `field_name` of the row whose primary key is its key, in key order (so two
    writers lock shared rows in the same order); return the keys that have no row.

    With `at_most`, a row changes only if the sum stays at or below its field `at_most` (one conditional
    UPDATE, so nothing can slip in between a read and the write); the keys of the rows left as they were
    are returned too.

    ORM (`filter(pk=…).update(F(…) + …)` per key): inventory 0.78, dashboard 0.70 ms; this: 0.46, 0.43 ms per
    hop's event, measured by bench/hop_ab.py."""
    connection, pk = connections[using], model._meta.pk
    kind, fields = ("add", (field_name,)) if at_most is None else ("add-at-most", (field_name, at_most))
    sql = _sql(kind, model, fields, connection)
    missing = []
    with connection.cursor() as cursor:
        for key, amount in sorted(amounts.items()):
            if amount:
                params = [amount, pk.get_db_prep_value(key, connection)]
                cursor.execute(sql, params if at_most is None else [*params, amount])
                if cursor.rowcount == 0:
                    missing.append(key)
    return missing


def locked_rows(model: type[Model], keys: Iterable, *, using: str) -> list[Model]:
    """The objects whose primary key is among `keys`, in key order, locked until the transaction ends:
    `select_for_update().filter(pk__in=keys).order_by("pk")` without the query compiler. (On SQLite the
    transaction already holds the database's write lock; the lock order matters on PostgreSQL.)

    ORM: shop 0.56, inventory 0.47, shipping 1.02, dashboard 0.66 ms; this: 0.42, 0.46, 0.72, 0.43 ms per
    hop's event, measured by bench/hop_ab.py."""
    keys = list(keys)
    if not keys:
        return []
    connection, meta = connections[using], model._meta
    fields = meta.concrete_fields
    chains = _converter_chains(model, fields, connection)
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(meta.db_table)}"  # noqa: S608
        f" WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(keys))}) ORDER BY {quote(meta.pk.column)}"
    )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [meta.pk.get_db_prep_value(key, connection) for key in keys])
        rows = cursor.fetchall()
    names = [f.attname for f in fields]
    return [model.from_db(using, names, _converted(row, chains, connection)) for row in rows]


def oldest_unset(model: type[Model], fields: tuple[str, ...], *, unset: str, limit: int, using: str) -> list[tuple]:
    """`fields` of the first `limit` rows in primary-key order whose field `unset` is NULL, converted as the
    ORM converts them (e.g. an outbox's unsent rows)."""
    connection, meta = connections[using], model._meta
    quote, columns = connection.ops.quote_name, [meta.get_field(name) for name in fields]
    pk = quote(meta.pk.column)
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in columns)} FROM {quote(meta.db_table)}"  # noqa: S608
        f" WHERE {quote(meta.get_field(unset).column)} IS NULL ORDER BY {pk} LIMIT %s"
    )
    chains = _converter_chains(model, columns, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        rows = cursor.fetchall()
    return [tuple(_converted(row, chains, connection)) for row in rows]


def set_on_rows(model: type[Model], field_name: str, value, keys: list, *, using: str) -> None:
    """Set one field to one value on the rows whose primary key is among `keys` (one UPDATE … IN)."""
    if not keys:
        return
    connection, meta = connections[using], model._meta
    field, quote = meta.get_field(field_name), connection.ops.quote_name
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote(field.column)} = %s"  # noqa: S608
        f" WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(keys))})"
    )
    params = [field.get_db_prep_save(value, connection)] + [meta.pk.get_db_prep_value(k, connection) for k in keys]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def present_values(model: type[Model], field_name: str, candidates: list, *, using: str, **equal) -> set[str]:
    """Which of `candidates` are stored in `field_name` of the rows whose other fields equal `equal`, as
    strings (e.g. the event ids an inbox already holds for a group): `present_keys` with one group.

    ORM (`filter(…__in=…).values_list(…)`): inventory 0.50, dashboard 0.53 ms; this: 0.46, 0.43 ms per hop's
    event, measured by bench/hop_ab.py (inventory within the noise, the dashboard 17 % dearer)."""
    keys = [(*equal.values(), candidate) for candidate in candidates]
    return {str(key[-1]) for key in present_keys(model, (*equal, field_name), keys, using=using)}


def present_keys(model: type[Model], fields: tuple[str, ...], keys: Iterable[tuple], *, using: str) -> set[tuple]:
    """Which of `keys` (tuples of values of `fields`) are stored, as tuples of Python values.

    Keys that share all but their last value are asked together, `(a = %s AND b = %s AND c IN (…))`, the
    groups joined by OR: the form both SQLite and PostgreSQL answer from a unique index on `fields`. (The
    ORM's `Q(a=…, b=…, c__in=…) | …` compiles each value into an expression of its own.)

    ORM: dashboard 0.61 ms; this: 0.43 ms per hop's event, measured by bench/hop_ab.py."""
    groups: dict[tuple, list] = {}
    for key in keys:
        groups.setdefault(tuple(key[:-1]), []).append(key[-1])
    if not groups:
        return set()
    connection, meta = connections[using], model._meta
    columns = [meta.get_field(name) for name in fields]
    quote, prefix, last = connection.ops.quote_name, columns[:-1], columns[-1]
    where, params = [], []
    for head, tails in groups.items():
        terms = [f"{quote(field.column)} = %s" for field in prefix]
        terms.append(f"{quote(last.column)} IN ({', '.join(['%s'] * len(tails))})")
        where.append(f"({' AND '.join(terms)})")
        params += [field.get_db_prep_value(value, connection) for field, value in zip(prefix, head, strict=True)]
        params += [last.get_db_prep_value(value, connection) for value in tails]
    selected = ", ".join(quote(field.column) for field in columns)
    sql = f"SELECT {selected} FROM {quote(meta.db_table)} WHERE {' OR '.join(where)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {
            tuple(field.to_python(value) for field, value in zip(columns, row, strict=True))
            for row in cursor.fetchall()
        }


@cache
def _insert_fields(model: type[Model]) -> tuple[Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin)))


_chains: dict[tuple, list] = {}


def _converter_chains(model: type[Model], fields, connection) -> list[list[tuple]]:
    """Per field, the converters the ORM applies to what the database returns (e.g. SQLite's text to
    datetime, UUID and Decimal; JSON fields' decoding), found once per model, fields and database."""
    key = (model, tuple(field.attname for field in fields), connection.vendor)
    if key not in _chains:
        table = model._meta.db_table
        _chains[key] = [
            [(convert, col) for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection)]
            for col in (field.get_col(table) for field in fields)
        ]
    return _chains[key]


def _converted(row: tuple, chains: list[list[tuple]], connection) -> list:
    values = list(row)
    for i, chain in enumerate(chains):
        for convert, col in chain:
            values[i] = convert(values[i], col, connection)
    return values


_statements: dict[tuple, str] = {}


def _sql(kind: str, model: type[Model], fields: tuple[str, ...], connection) -> str:
    key = (kind, model, fields, connection.vendor)
    if key not in _statements:
        meta, quote = model._meta, connection.ops.quote_name
        if kind == "update":
            assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
            sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
        elif kind.startswith("add"):
            column = quote(meta.get_field(fields[0]).column)
            sql = f"UPDATE {quote(meta.db_table)} SET {column} = {column} + %s WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
            if kind == "add-at-most":
                sql += f" AND {column} + %s <= {quote(meta.get_field(fields[1]).column)}"
        else:
            columns = [quote(f.column) for f in _insert_fields(model)]
            values = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608
        _statements[key] = sql
    return _statements[key]
