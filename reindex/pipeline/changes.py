"""The rows whose documents changed since a time, read in chunks of primary keys.

A definition's ``changed_since(since)`` says which primary keys to look at (by
default: its model's rows whose ``updated_field`` is at or after ``since``). A
queryset of them is read with one query, sorted by the database and streamed, so
memory is bounded by the chunk and the cost follows the changes, not the table; each
chunk's rows are then read through ``get_queryset()`` (one query), and the primary
keys it does not return are the documents to delete::

    chunks = changed_pk_chunks(ProductIndex(), since, 1000)
    for rows, gone in change_batches(ProductIndex().get_queryset(), chunks):
        ...  # index the rows' documents, delete the documents of ``gone``
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from reindex.database.lookups import keys_filter
from reindex.database.rows import read_rows, row_pk
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Action, Failure, build_batches, delete_actions
from reindex.server.watermarks import for_queries


def changed_keys(definition: IndexDefinition, since: datetime.datetime) -> Any:
    """``definition.changed_since(since)`` as a queryset of the model's rows, when it is a queryset.

    Wrapping it (``pk IN (<changed>)``) makes any queryset of keys, a ``union()``
    included, one that can be split into ranges with a window function (``--workers``).
    An iterable that is not a queryset is returned as it is.
    """
    from django.db.models import QuerySet

    changed = definition.changed_since(for_queries(since))
    if not isinstance(changed, QuerySet):
        return changed
    return definition.get_queryset().model._base_manager.filter(pk__in=changed).order_by().values_list("pk", flat=True)


def count_changed(definition: IndexDefinition, since: datetime.datetime) -> int:
    """How many primary keys ``changed_since(since)`` gives (one COUNT query for a queryset)."""
    from django.db.models import QuerySet

    changed = definition.changed_since(for_queries(since))
    if not isinstance(changed, QuerySet):
        return len(set(changed))
    sql, params, connection = _keys_sql(changed)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH changed (pk) AS ({sql}) SELECT COUNT(DISTINCT pk) FROM changed", params)
        return int(cursor.fetchone()[0])


def changed_pk_chunks(
    definition: IndexDefinition, since: datetime.datetime, size: int, after: Any = None, upto: Any = None
) -> Iterator[list[Any]]:
    """The changed primary keys in ascending lists of at most ``size``, within ``after < pk <= upto``.

    A queryset is read with one query, sorted by the database, and streamed through a
    server-side cursor on PostgreSQL (memory bounded by the chunk); on SQLite the keys
    are read at once, about 40 bytes each. The cost follows the number of changed keys.
    Another iterable is read whole and sorted.
    """
    from django.db.models import QuerySet

    changed = definition.changed_since(for_queries(since))
    if isinstance(changed, QuerySet):
        keys = _sorted_keys(changed, size, after, upto)
    else:
        keys = iter(sorted({definition.pk_field.to_python(pk) for pk in changed}))
    pk_field, chunk, last = definition.pk_field, [], None
    for key in keys:
        key = pk_field.to_python(key)
        if key == last or (after is not None and key <= after) or (upto is not None and key > upto):
            continue  # a repeated key (UNION ALL), or outside the range
        chunk.append(key)
        last = key
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sorted_keys(changed: Any, size: int, after: Any, upto: Any) -> Iterator[Any]:
    sql, params, connection = _keys_sql(changed)
    where, bounds = [], []
    for condition, bound in (("pk > %s", after), ("pk <= %s", upto)):
        if bound is not None:
            where.append(condition)
            bounds.append(bound)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    cursor = connection.chunked_cursor()
    try:
        cursor.execute(f"WITH changed (pk) AS ({sql}) SELECT pk FROM changed{clause} ORDER BY pk", [*params, *bounds])
        if connection.vendor == "sqlite":
            # SQLite holds a read lock while a statement is open, and without WAL that keeps
            # the site's writes waiting: read the keys at once, before any document is sent.
            rows = cursor.fetchall()
            cursor.close()
            yield from (key for (key,) in rows)
            return
        while rows := cursor.fetchmany(size):
            for (key,) in rows:
                yield key
    finally:
        cursor.close()


def _keys_sql(changed: Any) -> tuple[str, Any, Any]:
    """The SQL of a queryset of primary keys, its parameters, and the connection it runs on.

    A queryset of whole rows is narrowed to its primary keys.
    """
    from django.db import connections

    if not changed.query.values_select and not changed.query.combinator:
        changed = changed.values("pk")
    sql, params = changed.query.get_compiler(changed.db).as_sql()
    return sql, list(params), connections[changed.db]


def change_batches(
    queryset: Any, pk_chunks: Iterable[Sequence[Any]], *, cursor: bool = True
) -> Iterator[tuple[list[Any], list[Any]]]:
    """For each chunk of primary keys: its rows as ``queryset`` reads them, and the keys it left out.

    A plain ``values()`` queryset is read on the database cursor unless ``cursor`` is False.
    """
    from django.db import reset_queries

    for chunk in pk_chunks:
        picked = keys_filter(queryset, "pk", chunk).order_by("pk")
        rows = read_rows(picked) if cursor else list(picked)
        reset_queries()  # with DEBUG=True Django would keep every query
        present = {row_pk(row) for row in rows}
        yield rows, [pk for pk in chunk if pk not in present]


def change_action_batches(
    definition: IndexDefinition,
    index: str,
    queryset: Any,
    pk_chunks: Iterable[Sequence[Any]],
    on_read: Callable[[int], None],
    on_failure: Callable[[Failure], None],
) -> Iterator[list[Action]]:
    """For each chunk, the bulk actions that bring ``index`` up to date for its primary keys: index or delete."""
    for rows, gone in change_batches(queryset, pk_chunks, cursor=definition.cursor_reads):
        batch: list[Action] = []
        for built in build_batches(definition, index, [rows] if rows else [], on_read, on_failure):
            batch += built
        batch += delete_actions(index, [definition.id_from_pk(pk) for pk in gone])
        yield batch
