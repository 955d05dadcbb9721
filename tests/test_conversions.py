"""Columns converted a whole column at a time: every value the ORM's, of the same type, on SQLite and PostgreSQL.

Given products whose columns and annotations cover every field type the cursor path
converts (NULLs included), when they are read on the cursor, then each value equals
the ORM's, is of the same type and, for datetimes, carries the same ``tzinfo``. Stored
values the fast functions are not sure of (a timestamp with an offset, a boolean
stored as 2, a UUID with dashes) are converted the ORM's way. The fast functions
themselves are checked against Django's converters on generated values.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from catalog.models import Product
from django.db.models import Case, DateField, DateTimeField, DecimalField, ExpressionWrapper, F, Q, UUIDField, When
from django.db.models.fields import BooleanField
from django.db.models.functions import Cast
from hypothesis import given
from hypothesis import strategies as st

from reindex.database import conversions
from reindex.database.conversions import Unsure
from reindex.database.rows import CursorReader, read_rows
from tests.helpers import recorded_sql


def every_type() -> Any:
    """Product columns and annotations of every converted type, some of them NULL in half the rows."""
    when_in_stock = Q(in_stock=True)
    money = DecimalField(max_digits=10, decimal_places=2)
    return (
        Product.objects.order_by("pk")
        .values("pk", "price", "sku", "in_stock", "is_active", "created_at", "updated_at", "category_id")
        .annotate(
            day=Cast("created_at", DateField()),
            cheap=Q(price__lt=50),
            tripled=ExpressionWrapper(F("price") * 3, output_field=money),
            maybe_when=Case(When(when_in_stock, then=F("created_at")), output_field=DateTimeField()),
            maybe_day=Case(When(when_in_stock, then=Cast("created_at", DateField())), output_field=DateField()),
            maybe_active=Case(When(when_in_stock, then=F("is_active")), output_field=BooleanField()),
            maybe_price=Case(When(when_in_stock, then=F("price")), output_field=money),
            maybe_sku=Case(When(when_in_stock, then=F("sku")), output_field=UUIDField()),
        )
    )


def exactly(value: Any) -> tuple[Any, ...]:
    """A value with its type, and its tzinfo for a datetime: what must be the same, not merely equal."""
    return type(value), value, type(getattr(value, "tzinfo", None)), str(getattr(value, "tzinfo", None))


def assert_the_orms_rows(queryset: Any) -> list[dict[str, Any]]:
    rows, expected = read_rows(queryset), list(queryset)
    assert [list(row) for row in rows] == [list(row) for row in expected]
    assert [[exactly(v) for v in row.values()] for row in rows] == [
        [exactly(v) for v in row.values()] for row in expected
    ]
    return rows


def test_every_converted_type_is_the_orms_value_and_type(catalog):
    catalog(products=60)
    Product.objects.update(in_stock=True)
    Product.objects.filter(pk__in=Product.objects.order_by("pk").values("pk")[:30]).update(in_stock=False)

    rows = assert_the_orms_rows(every_type())

    nulls = [row for row in rows if not row["in_stock"]]
    assert len(nulls) == 30 and all(row["maybe_when"] is None and row["maybe_sku"] is None for row in nulls)
    assert {type(row["created_at"]) for row in rows} == {datetime.datetime}
    assert {type(row["day"]) for row in rows} == {datetime.date}
    assert {type(row["price"]) for row in rows} == {decimal.Decimal}


def test_the_fast_path_is_taken_on_ordinary_rows(catalog):
    """One query per read, the driver's converters skipped on SQLite; psycopg's own timestamptz loader on PostgreSQL."""
    from django.db import connection

    catalog(products=20)
    queryset = Product.objects.values("pk", "price", "sku", "in_stock", "created_at")
    plans = CursorReader()

    with recorded_sql() as statements:
        plans.read(queryset)

    assert len(statements) == 1
    if connection.vendor == "sqlite":
        assert '+("catalog_product"."created_at")' in statements[0]
        assert '+("catalog_product"."in_stock")' in statements[0]
        assert {plan.position for plan in plans.plans or () if plan.fast} == {1, 2, 3, 4}
    else:
        with connection.cursor() as cursor:
            conversions.use_c_loaders(cursor)
            loader = cursor.cursor.adapters.get_loader(1184, 0)  # timestamptz, text
        assert not loader.__module__.startswith("django")


def test_a_primary_key_column_is_never_read_raw(db):
    """The keyset orders by the primary key's position in the SELECT list: as an expression it would lose its index."""
    from django.db import connection
    from django.db.models.expressions import Col

    if connection.vendor != "sqlite":
        pytest.skip("raw reads are SQLite's")
    to_bool = connection.ops.convert_booleanfield_value
    flag, pk = Product._meta.get_field("in_stock"), Product._meta.pk

    assert conversions.fast_function([to_bool], Col("catalog_product", flag), connection)[1] is True
    assert conversions.fast_function([to_bool], Col("catalog_product", pk), connection) == (None, False)


SQLITE_EDITS = {
    "a timestamp stored with an offset": "UPDATE catalog_product SET created_at = '2020-01-02 03:04:05+02:00'",
    "a timestamp with a T and no fraction": "UPDATE catalog_product SET created_at = '2020-01-02T03:04:05'",
    "a boolean stored as 2": "UPDATE catalog_product SET in_stock = 2",
    "a UUID stored with dashes": "UPDATE catalog_product SET sku = '12345678-1234-5678-1234-567812345678'",
    "a price stored as an integer": "UPDATE catalog_product SET price = 7",
    "a price of many digits": "UPDATE catalog_product SET price = 12345678.125",
}


@pytest.mark.parametrize("edit", SQLITE_EDITS.values(), ids=SQLITE_EDITS.keys())
def test_stored_values_the_fast_functions_are_not_sure_of_are_read_the_orms_way(catalog, edit):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("values only SQLite stores like this")
    catalog(products=10)
    with connection.cursor() as cursor:
        cursor.execute(edit + " WHERE id IN (SELECT id FROM catalog_product ORDER BY id LIMIT 3)")

    assert_the_orms_rows(every_type())


def test_timestamps_stored_with_other_offsets_load_as_djangos_loader_gives_them(catalog):
    from django.db import connection

    catalog(products=5)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("UPDATE catalog_product SET created_at = '2020-01-02 03:04:05.5+02:00'")
        else:
            cursor.execute("UPDATE catalog_product SET created_at = '2020-01-02 01:04:05.500000'")

    rows = assert_the_orms_rows(every_type())

    assert {row["created_at"] for row in rows} == {datetime.datetime(2020, 1, 2, 1, 4, 5, 500000, tzinfo=datetime.UTC)}


# The fast functions against Django's converters on generated values: equal or Unsure, never different.


def djangos_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@given(
    st.lists(
        st.one_of(
            st.uuids().map(lambda u: u.hex), st.text(alphabet="0123456789abcdefABCDEF-_ +{}x", min_size=30, max_size=34)
        ),
        min_size=1,
    )
)
def test_hex_uuids_are_those_of_uuid_or_unsure(texts):
    expected = [djangos_uuid(text) for text in texts]
    try:
        made = conversions.hex_uuids(texts)
    except Unsure:
        return
    assert None not in expected
    assert [(u, u.int, u.is_safe, str(u)) for u in made] == [(u, u.int, u.is_safe, str(u)) for u in expected if u]


def djangos_datetime(text: str | None, zone: datetime.tzinfo) -> Any:
    """What the driver's converter and then Django's give for stored text."""
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    if text is None:
        return None
    value = parse_datetime(text)
    if value is not None and not timezone.is_aware(value):
        value = timezone.make_aware(value, zone)
    return value


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.datetimes().map(lambda d: d.isoformat(" ")),
            st.datetimes(timezones=st.timezones()).map(str),
            st.text(alphabet="0123456789-: T.+Z", max_size=30),
        ),
        min_size=1,
    ),
    st.sampled_from([datetime.UTC, datetime.timezone(datetime.timedelta(hours=5))]),
)
def test_sqlite_datetimes_are_djangos_or_unsure(texts, zone):
    try:
        expected = [djangos_datetime(text, zone) for text in texts]
    except ValueError:
        expected = None  # Django raises: the fast function must not make up values
    try:
        made = conversions.sqlite_datetimes(zone)(texts)
    except Unsure:
        return
    assert expected is not None
    assert [exactly(v) for v in made] == [exactly(v) for v in expected]


@given(st.lists(st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=False)), min_size=1))
def test_sqlite_booleans_are_djangos_or_unsure(values):
    djangos = [None if v is None else bool(v == 1) if type(v) is int else str(v).encode() == b"1" for v in values]
    try:
        made = conversions.sqlite_booleans(values)
    except Unsure:
        return
    assert [exactly(v) for v in made] == [exactly(v) for v in djangos]


@given(st.lists(st.one_of(st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9)), min_size=1))
def test_sqlite_decimals_are_djangos_or_unsure(values):
    from django.db.backends.sqlite3.base import DatabaseOperations  # base first: operations alone is a circular import
    from django.db.models.expressions import Col

    field = Product._meta.get_field("price")
    column = Col("catalog_product", field)
    converter = DatabaseOperations(None).get_decimalfield_converter(column)  # SQLite's, whatever the test database
    try:
        expected = [converter(v, column, None) for v in values]
    except decimal.DecimalException:
        expected = None
    try:
        made = conversions.sqlite_decimals(column)(values)
    except Unsure:
        return
    assert expected is not None
    assert [(type(v), str(v)) for v in made] == [(type(v), str(v)) for v in expected]
