"""Reading ``values()`` rows straight from the database cursor, batch by batch.

The ORM's per-row machinery (its iterator classes, the generator that applies
converters, the dict made per row through an index loop) is a good part of a
rebuild's time. For a definition whose ``get_queryset()`` is a ``values()``
queryset, ``cursor_batches()`` runs the very SQL the ORM would run (compiled by the
ORM: the keyset condition, ``ORDER BY pk`` and ``LIMIT`` added the same way) on the
connection's DB-API cursor, applies only the converters the ORM's compiler names
for the selected columns (SQLite's text timestamps to aware datetimes, numbers to
``Decimal``, integers to booleans...), and builds the same dicts with ``zip``::

    batches = cursor_batches(Product.objects.values("pk", "name"), 1000)
    if batches is None:  # not a queryset the cursor path reads faithfully
        batches = iter_batches(queryset, 1000)

``plain_values()`` says which querysets qualify; any other is read through the ORM
(``reindex.documents.iter_batches``), which gives the same rows, only slower.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def _not_values(queryset: Any) -> bool:
    from django.db.models.query import ValuesIterable

    return getattr(queryset, "_iterable_class", None) is not ValuesIterable


def _sliced(queryset: Any) -> bool:
    return bool(queryset.query.is_sliced)


def _distinct(queryset: Any) -> bool:
    return bool(queryset.query.distinct)


def _extra(queryset: Any) -> bool:
    return bool(queryset.query.extra) or bool(queryset.query.extra_select)


def _combined(queryset: Any) -> bool:
    return bool(queryset.query.combinator)


def _prefetches(queryset: Any) -> bool:
    return bool(queryset._prefetch_related_lookups)


def _composite(queryset: Any) -> bool:
    pk = queryset.model._meta.pk
    return pk is None or type(pk).__name__ == "CompositePrimaryKey"


#: Why a queryset is read through the ORM instead (``cursor_refusal()`` names the first that applies).
REFUSALS = (
    ("not a values() queryset (model instances, values_list(), named or flat rows)", _not_values),
    ("sliced", _sliced),
    ("distinct()", _distinct),
    ("extra()", _extra),
    ("union(), intersection() or difference()", _combined),
    ("prefetch_related()", _prefetches),
    ("a composite primary key", _composite),
)


def cursor_refusal(queryset: Any) -> str | None:
    """Why ``queryset`` is read through the ORM rather than the cursor; None when the cursor reads it."""
    for reason, applies in REFUSALS:
        if applies(queryset):
            return reason
    return None


def plain_values(queryset: Any) -> bool:
    """True when ``cursor_batches()`` reads ``queryset`` exactly as the ORM would."""
    return cursor_refusal(queryset) is None


def cursor_batches(queryset: Any, batch_size: int, after: Any = None) -> Iterator[list[dict[str, Any]]] | None:
    """Lists of at most ``batch_size`` row dicts in primary-key order (from ``pk > after``), or None.

    None when the queryset is not one the cursor path reads faithfully (see
    ``cursor_refusal()``): read it through the ORM then (``orm_batches()``).
    """
    if not plain_values(queryset):
        return None
    return keyset_batches(queryset, batch_size, after, CursorReader().read)


def orm_batches(queryset: Any, batch_size: int, after: Any = None) -> Iterator[list[Any]]:
    """The same batches through the ORM's own iterator: model instances, or any queryset."""
    return keyset_batches(queryset, batch_size, after, list)


def keyset_batches(queryset: Any, batch_size: int, after: Any, read: Callable[[Any], list[Any]]) -> Iterator[list[Any]]:
    """Lists of at most ``batch_size`` rows in primary-key order, each page read by ``read``.

    Keyset pagination (``pk > last``), never OFFSET: every batch is one query (plus
    one per prefetch_related lookup), and the cost does not grow with the position.
    """
    from django.db import reset_queries

    from reindex.definitions import row_pk

    ordered = queryset.order_by("pk")
    last = after
    while True:
        page = ordered if last is None else ordered.filter(pk__gt=last)
        batch = read(page[:batch_size])
        reset_queries()  # with DEBUG=True Django would keep every query
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        last = row_pk(batch[-1])


def read_rows(queryset: Any) -> list[Any]:
    """Every row of a queryset as the ORM gives them, in one query: on the cursor for plain ``values()``."""
    if not plain_values(queryset):
        return list(queryset)
    return CursorReader().read(queryset)


class CursorReader:
    """Reads ``values()`` querysets of the same columns on the cursor; finds their converters once."""

    def __init__(self) -> None:
        self.converters: dict[int, Any] | None = None

    def read(self, queryset: Any) -> list[dict[str, Any]]:
        """The rows of ``queryset`` (compiled by the ORM) as the dicts ``ValuesIterable`` would make."""
        from django.core.exceptions import EmptyResultSet

        compiler = queryset.query.get_compiler(queryset.db)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # e.g. pk__in=[]: the ORM runs no query and returns nothing
            return []
        with compiler.connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: Any = cursor.fetchall()
        if self.converters is None:
            self.converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
        if self.converters:
            rows = compiler.apply_converters(rows, self.converters)
        names = names_of(queryset.query)
        return [dict(zip(names, row, strict=False)) for row in rows]  # as the ORM: extra columns ignored


def names_of(query: Any) -> list[str]:
    """The keys of a ``values()`` row, in the order of the selected columns (as ``ValuesIterable`` has them)."""
    selected = getattr(query, "selected", None)  # Django 5.2: the order values() was given
    if selected:
        return list(selected)
    return [*query.extra_select, *query.values_select, *query.annotation_select]
