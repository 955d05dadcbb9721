"""Reading ``values()`` rows straight from the database cursor, batch by batch.

The ORM's per-row machinery (its iterator classes, the generator that applies
converters value by value, the dict made per row through an index loop) is a good
part of a rebuild's time. For a definition whose ``get_queryset()`` is a plain
``values()`` queryset, ``cursor_batches()`` runs the very SQL the ORM would run
(compiled by the ORM: the keyset condition, ``ORDER BY pk`` and ``LIMIT`` added the
same way) on the connection's cursor, applies the converters the ORM's compiler
names for the selected columns, column by column (on SQLite: naive timestamps to
aware datetimes, numbers to ``Decimal``, hex to ``UUID``...), and builds the same
dicts with ``zip``::

    batches = cursor_batches(Product.objects.values("pk", "name"), 1000)
    if batches is None:  # not a queryset the cursor path reads faithfully
        batches = orm_batches(queryset, 1000)

``cursor_refusal()`` says why a queryset does not qualify; it is then read through
the ORM, which gives the same rows, only slower. ``read_grouped()`` reads the related
rows of ``reindex.related`` the same way.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
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


def read_grouped(queryset: Any, by: str) -> dict[Any, list[dict[str, Any]]]:
    """The rows of a plain ``values()`` queryset in lists by their field ``by``, each dict without ``by``."""
    reader = CursorReader()
    tuples = reader.tuples(queryset)
    names = names_of(queryset.query)
    if by not in names:
        from reindex.errors import ConfigurationError

        raise ConfigurationError(f"related rows: {by!r} is not among the queryset's values() fields {names}")
    at = names.index(by)
    others = [i for i in range(len(names)) if i != at]
    rest = [names[i] for i in others]
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    if at == len(names) - 1:  # the key last (an annotation, say): zip() stops before it
        for row in tuples:
            grouped[row[at]].append(dict(zip(rest, row, strict=False)))
    else:
        pick = operator.itemgetter(*others) if len(others) > 1 else lambda row: (row[others[0]],)
        for row in tuples:
            grouped[row[at]].append(dict(zip(rest, pick(row), strict=True)))
    return grouped


def read_rows(queryset: Any) -> list[Any]:
    """Every row of a queryset as the ORM gives them, in one query: on the cursor for plain ``values()``."""
    if not plain_values(queryset):
        return list(queryset)
    return CursorReader().read(queryset)


class CursorReader:
    """Reads ``values()`` querysets of the same columns on the cursor; finds their converters once."""

    def __init__(self) -> None:
        self.converters: list[tuple[int, Callable[[Any], Any]]] | None = None

    def read(self, queryset: Any) -> list[dict[str, Any]]:
        """The rows of ``queryset`` (compiled by the ORM) as the dicts ``ValuesIterable`` would make."""
        names = names_of(queryset.query)
        return [dict(zip(names, row, strict=False)) for row in self.tuples(queryset)]  # extra columns ignored

    def tuples(self, queryset: Any) -> Iterable[Sequence[Any]]:
        """The rows of ``queryset`` as tuples of converted values, in the order of its selected columns."""
        from django.core.exceptions import EmptyResultSet

        compiler = queryset.query.get_compiler(queryset.db)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # e.g. pk__in=[]: the ORM runs no query and returns nothing
            return []
        with compiler.connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: list[Any] = cursor.fetchall()
        if not rows:
            return []
        if self.converters is None:
            self.converters = column_converters(compiler)
        if not self.converters:
            return rows
        # Column by column: one map() per converted column instead of a loop per row and column.
        columns: list[Any] = list(zip(*rows, strict=True))
        for position, convert in self.converters:
            columns[position] = map(convert, columns[position])
        return zip(*columns, strict=True)


def column_converters(compiler: Any) -> list[tuple[int, Callable[[Any], Any]]]:
    """For each column the ORM converts, its position and one function of the value doing what its converters do."""
    connection = compiler.connection
    found = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
    columns = []
    for position, (converters, expression) in sorted(found.items()):
        steps = [one_argument(converter, expression, connection) for converter in converters]
        columns.append((position, steps[0] if len(steps) == 1 else chain(steps)))
    return columns


def one_argument(converter: Any, expression: Any, connection: Any) -> Callable[[Any], Any]:
    """``converter(value, expression, connection)`` as a function of the value, faster where an exact one is known.

    SQLite's driver already parses a datetime column into a naive ``datetime``, and
    Django's converter then reads the ``USE_TZ`` setting and checks awareness per value
    before ``value.replace(tzinfo=connection.timezone)`` (what ``make_aware`` does):
    here the setting and the zone are read once. Anything else goes to the converter.
    """
    import datetime

    from django.conf import settings

    if (
        getattr(converter, "__name__", "") == "convert_datetimefield_value"
        and connection.vendor == "sqlite"
        and settings.USE_TZ
        and not getattr(settings, "USE_DEPRECATED_PYTZ", False)
    ):
        zone, naive = connection.timezone, datetime.datetime

        def aware(value: Any) -> Any:
            if type(value) is naive and value.tzinfo is None:
                return value.replace(tzinfo=zone)
            return converter(value, expression, connection)

        return aware
    return lambda value: converter(value, expression, connection)


def chain(steps: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One function applying ``steps`` in order."""

    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return convert


def names_of(query: Any) -> list[str]:
    """The keys of a ``values()`` row, in the order of the selected columns (as ``ValuesIterable`` has them)."""
    selected = getattr(query, "selected", None)  # Django 5.2: the order values() was given
    if selected:
        return list(selected)
    return [*query.extra_select, *query.values_select, *query.annotation_select]
