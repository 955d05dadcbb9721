"""Reading ``values()`` rows straight from the database cursor, batch by batch.

The ORM's per-row machinery (its iterator classes, the generator that applies
converters value by value, the dict made per row through an index loop) is a good
part of a rebuild's time. For a definition whose ``get_queryset()`` is a plain
``values()`` queryset, ``cursor_batches()`` runs the very SQL the ORM would run
(compiled by the ORM: the keyset condition, ``ORDER BY pk`` and ``LIMIT`` added the
same way) on the connection's cursor, applies the converters the ORM's compiler
names for the selected columns, a whole column at a time (``reindex.database.conversions``:
on SQLite, naive timestamps to aware datetimes, numbers to ``Decimal``, hex to
``UUID``..., in C where an exact equivalent is known), and builds the same dicts
with ``zip``::

    batches = cursor_batches(Product.objects.values("pk", "name"), 1000)
    if batches is None:  # not a queryset the cursor path reads faithfully
        batches = orm_batches(queryset, 1000)

``cursor_refusal()`` says why a queryset does not qualify; it is then read through
the ORM, which gives the same rows, only slower. ``read_grouped()`` reads the related
rows of ``reindex.definitions.related`` the same way.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import repeat
from typing import Any

from reindex.database.conversions import ColumnPlan, Unsure, column_plans, use_c_loaders
from reindex.errors import ConfigurationError


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


def row_pk(row: Any) -> Any:
    """Primary key of a model instance or of a ``values()`` dict."""
    if isinstance(row, dict):
        if "pk" in row:
            return row["pk"]
        if "id" in row:
            return row["id"]
        raise ConfigurationError("a values() queryset must include 'pk'")
    return row.pk


def keyset_batches(queryset: Any, batch_size: int, after: Any, read: Callable[[Any], list[Any]]) -> Iterator[list[Any]]:
    """Lists of at most ``batch_size`` rows in primary-key order, each page read by ``read``.

    Keyset pagination (``pk > last``), never OFFSET: every batch is one query (plus
    one per prefetch_related lookup), and the cost does not grow with the position.
    """
    from django.db import reset_queries

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
    names = names_of(queryset.query)
    if by not in names:
        raise ConfigurationError(f"related rows: {by!r} is not among the queryset's values() fields {names}")
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    columns = CursorReader().columns(queryset)
    if not columns:
        return grouped
    at = names.index(by)
    rest = [name for i, name in enumerate(names) if i != at]
    others = [column for i, column in enumerate(columns[: len(names)]) if i != at]
    rows = map(dict, map(zip, repeat(rest), zip(*others, strict=True)))
    # In C: each key's list (made by the defaultdict when new), and the row appended to it.
    deque(map(list.append, map(grouped.__getitem__, columns[at]), rows), maxlen=0)
    return grouped


def read_rows(queryset: Any) -> list[Any]:
    """Every row of a queryset as the ORM gives them, in one query: on the cursor for plain ``values()``."""
    if not plain_values(queryset):
        return list(queryset)
    return CursorReader().read(queryset)


class CursorReader:
    """Reads ``values()`` querysets of the same columns on the cursor; plans their conversions once."""

    def __init__(self) -> None:
        self.plans: list[ColumnPlan] | None = None

    def read(self, queryset: Any) -> list[dict[str, Any]]:
        """The rows of ``queryset`` (compiled by the ORM) as the dicts ``ValuesIterable`` would make."""
        columns = self.columns(queryset)
        if not columns:
            return []
        names = names_of(queryset.query)  # zip() stops at the shorter: extra columns ignored
        return list(map(dict, map(zip, repeat(names), zip(*columns, strict=True))))

    def columns(self, queryset: Any) -> list[Sequence[Any]]:
        """The converted values of ``queryset``'s rows, column by column, in the order of its selected columns.

        Empty when there are no rows. A column whose fast conversion is Unsure of a
        value is converted the ORM's way; when that column was read raw (without the
        driver's converter), the batch is read again the ORM's way.
        """
        from django.core.exceptions import EmptyResultSet

        compiler = queryset.query.get_compiler(queryset.db)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # e.g. pk__in=[]: the ORM runs no query and returns nothing
            return []
        if self.plans is None:
            self.plans = column_plans(compiler)
        plans = self.plans
        raw = [plan.position for plan in plans if plan.raw]
        raw_sql = raw_select(compiler, sql, raw) if raw else sql
        if raw_sql is None:  # a SELECT list not as expected: no raw reads
            plans = [replace(plan, fast=None, raw=False) if plan.raw else plan for plan in plans]
            raw_sql = sql
        columns = fetch_columns(compiler, raw_sql, params)
        if not columns:
            return []
        for plan in plans:
            values = columns[plan.position]
            try:
                columns[plan.position] = plan.convert(values)
            except Unsure:
                if plan.raw:
                    return self.orm_columns(compiler, sql, params)
                columns[plan.position] = plan.orm(values)
        return columns

    def orm_columns(self, compiler: Any, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows of ``sql`` read with the driver's converters and converted by the ORM's, column by column."""
        columns = fetch_columns(compiler, sql, params)
        if columns:
            for plan in self.plans or ():
                columns[plan.position] = plan.orm(columns[plan.position])
        return columns


def fetch_columns(compiler: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    """The rows of ``sql`` on the compiler's connection, transposed into a list of columns (empty: no rows)."""
    connection = compiler.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            use_c_loaders(cursor)
        cursor.execute(sql, params)
        rows: list[Any] = cursor.fetchall()
    return list(zip(*rows, strict=True))


def raw_select(compiler: Any, sql: str, positions: Sequence[int]) -> str | None:
    """``sql`` with the columns at ``positions`` selected as ``+(column)``; None if its SELECT list is unexpected.

    On SQLite the unary plus returns its operand unchanged (text, number, blob or
    NULL), but as an expression it has no declared type, so the driver runs no
    converter on its values (``reindex.database.conversions`` converts them once instead).
    """
    wanted = set(positions)
    columns, plus = [], []
    for position, (_, (column_sql, _params), alias) in enumerate(compiler.select):
        alias_sql = f" AS {compiler.connection.ops.quote_name(alias)}" if alias else ""
        if "[" in alias_sql:  # PARSE_COLNAMES: a "[type]" in a column's name picks a converter too
            return None
        columns.append(column_sql + alias_sql)
        plus.append(f"+({column_sql}){alias_sql}" if position in wanted else column_sql + alias_sql)
    before = f"SELECT {', '.join(columns)} FROM "
    if not sql.startswith(before):
        return None
    return f"SELECT {', '.join(plus)} FROM " + sql[len(before) :]


def names_of(query: Any) -> list[str]:
    """The keys of a ``values()`` row, in the order of the selected columns (as ``ValuesIterable`` has them)."""
    selected = getattr(query, "selected", None)  # Django 5.2: the order values() was given
    if selected:
        return list(selected)
    return [*query.extra_select, *query.values_select, *query.annotation_select]
