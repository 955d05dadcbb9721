"""The ORM's converters of a selected column, applied a whole column at a time.

``column_plans(compiler)`` names, for each column of a compiled ``values()`` query
that the ORM converts, one function from the column's values (as the driver returns
them) to the values the ORM gives. Most are the ORM's own converters mapped over the
column. For the commonest columns on SQLite, an exact equivalent does the work in C
(``map()`` over ``fromisoformat``, a dict lookup, ``Context.quantize``) instead of two
or three Python calls per value::

    plans = column_plans(compiler)
    columns = list(zip(*cursor.fetchall()))
    for plan in plans:
        columns[plan.position] = plan.convert(columns[plan.position])  # may raise Unsure

Each fast function checks what it is given (the types of the whole column, at C
speed) and raises ``Unsure`` for anything it is not certain to convert as the ORM
would: a timestamp with an offset, a boolean stored as 2, a NULL where the fast form
has no place for it. The caller then reads that batch again the ORM's way.

On SQLite, Django opens connections with ``detect_types=PARSE_DECLTYPES``: the driver
itself runs a Python converter on every value of a ``datetime``, ``date`` or ``bool``
column (chosen by the column's declared type), before the ORM's converter runs on
the result. A column marked ``raw`` is selected as ``+column`` instead (SQLite's no-op
unary plus, which leaves no declared type and so no driver converter), and its fast
function converts the stored text or integer once.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

#: A whole column in, its converted values out.
ColumnFunction = Callable[[Sequence[Any]], Any]

NoneType = type(None)
tzinfo_of = attrgetter("tzinfo")


class Unsure(Exception):
    """A fast column function met a value it is not certain to convert as the ORM does."""


@dataclass(frozen=True)
class ColumnPlan:
    """How one selected column is converted: fast (``raw``: selected without the driver's converter), or the ORM's."""

    position: int
    orm: ColumnFunction
    fast: ColumnFunction | None = None
    raw: bool = False

    def convert(self, values: Sequence[Any]) -> Any:
        """The column's values converted; ``fast`` when there is one (it may raise ``Unsure``)."""
        return (self.fast or self.orm)(values)


def column_plans(compiler: Any) -> list[ColumnPlan]:
    """For each column the ORM converts, its position, the ORM's conversion and the fast one if any."""
    connection = compiler.connection
    found = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
    plans = []
    for position, (converters, expression) in sorted(found.items()):
        steps = [one_argument(converter, expression, connection) for converter in converters]
        orm = mapped(steps[0] if len(steps) == 1 else chain(steps))
        fast, raw = fast_function(converters, expression, connection)
        plans.append(ColumnPlan(position, orm, fast, raw))
    return plans


def mapped(convert: Callable[[Any], Any]) -> ColumnFunction:
    """``convert`` applied to every value of a column."""
    return lambda values: map(convert, values)


def one_argument(converter: Any, expression: Any, connection: Any) -> Callable[[Any], Any]:
    """``converter(value, expression, connection)`` as a function of the value."""
    return lambda value: converter(value, expression, connection)


def chain(steps: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One function applying ``steps`` in order."""

    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return convert


def fast_function(converters: list[Any], expression: Any, connection: Any) -> tuple[ColumnFunction | None, bool]:
    """An exact column function for a column converted by SQLite's own converter alone, and whether it reads raw values.

    Only the converters of Django's SQLite backend, alone on their column (no
    ``from_db_value()`` of a custom field after them), with ``USE_TZ`` read once here.
    """
    if connection.vendor != "sqlite" or len(converters) != 1:
        return None, False
    from django.conf import settings
    from django.db.backends.sqlite3.operations import DatabaseOperations
    from django.db.models.expressions import Col

    converter = converters[0]
    method = getattr(converter, "__func__", None)
    # Not a primary key: the keyset's ORDER BY names it by its position in the SELECT
    # list, and ordered by an expression SQLite would sort instead of reading the index.
    raw = drivers_converters_are_djangos() and not (isinstance(expression, Col) and expression.target.primary_key)
    if method is DatabaseOperations.convert_datetimefield_value and raw:
        if getattr(settings, "USE_DEPRECATED_PYTZ", False):
            return None, False
        return sqlite_datetimes(connection.timezone if settings.USE_TZ else None), True
    if method is DatabaseOperations.convert_datefield_value and raw:
        return sqlite_dates, True
    if method is DatabaseOperations.convert_booleanfield_value and raw:
        return sqlite_booleans, True
    if method is DatabaseOperations.convert_uuidfield_value:
        return hex_uuids, False
    decimals = "DatabaseOperations.get_decimalfield_converter.<locals>.converter"
    if getattr(converter, "__qualname__", "") == decimals and converter.__module__ == DatabaseOperations.__module__:
        return sqlite_decimals(expression), False
    return None, False


def drivers_converters_are_djangos() -> bool:
    """True when sqlite3's converters for the declared types of Django's columns do what Django registered.

    A raw column's value goes without the driver's converter, so its fast function
    does what that converter and Django's do together; a converter registered by
    the site in Django's place would be skipped.
    """
    import sqlite3

    found = sqlite3.converters
    try:
        return (
            all(
                found[name](b"2000-01-02 03:04:05.000006") == datetime.datetime(2000, 1, 2, 3, 4, 5, 6)
                for name in ("DATETIME", "TIMESTAMP")
            )
            and found["DATE"](b"2000-01-02") == datetime.date(2000, 1, 2)
            and (found["BOOL"](b"1"), found["BOOL"](b"0"), found["BOOL"](b"2")) == (True, False, False)
        )
    except Exception:
        return False


def use_c_loaders(cursor: Any) -> None:
    """On a psycopg 3 cursor, psycopg's own loader (C with psycopg[binary]) for ``timestamptz`` in place of Django's.

    Django registers a loader in Python that calls psycopg's Python loader and then
    ``.replace(tzinfo=connection.timezone)``: about 3.5 microseconds a value. psycopg's
    loader already gives the value in the session's time zone, ``info.timezone``;
    when that is the very object Django would put in its place, the ``replace()`` changes
    nothing, and psycopg's C loader gives the same values for a fifteenth of the CPU.
    Only this cursor's adapters change.
    """
    raw: Any = getattr(cursor, "cursor", None)
    adapters = getattr(raw, "adapters", None)
    if adapters is None or not hasattr(raw, "connection"):
        return  # not psycopg 3
    from psycopg import postgres
    from psycopg.pq import Format
    from psycopg.types.datetime import TimestamptzLoader

    oid = postgres.types["timestamptz"].oid
    djangos = adapters.get_loader(oid, Format.TEXT)
    zone = getattr(djangos, "timezone", None)
    if zone is not None and zone is raw.connection.info.timezone and issubclass(djangos, TimestamptzLoader):
        adapters.register_loader(oid, TimestamptzLoader)  # psycopg swaps in its C class when it has one


def types_of(values: Sequence[Any]) -> set[type]:
    return set(map(type, values))


def sqlite_datetimes(zone: datetime.tzinfo | None) -> ColumnFunction:
    """Stored text to datetimes, as the driver's ``parse_datetime`` and Django's ``make_aware(value, zone)`` give them.

    ``parse_datetime`` is ``datetime.fromisoformat`` for any text that parses. Text
    with an offset stays as it is in Django (aware already): here it is Unsure, as is
    text that does not parse (Django's regular expression may still read it).
    Once every text parses alone without an offset, ``fromisoformat(text + "+00:00")``
    gives the same wall time with ``timezone.utc`` itself as its ``tzinfo``: the value of
    ``.replace(tzinfo=timezone.utc)`` (a slow call with a keyword) for two C calls. Text
    that does not parse alone must not get there: ``"000110010000"`` does not, and with
    the offset it reads as a date and a time.
    """
    parse = datetime.datetime.fromisoformat
    utc = zone is datetime.timezone.utc and parse("2000-01-01 00:00:00+00:00").tzinfo is zone

    def convert(values: Sequence[Any]) -> list[Any]:
        kinds = types_of(values)
        if not kinds <= {str, NoneType}:
            raise Unsure("not text")
        try:
            if NoneType in kinds:
                return [None if v is None else aware(parse(v)) for v in values]
            if utc:
                if any(map(tzinfo_of, map(parse, values))):  # each parses alone, without an offset
                    raise Unsure("an offset in the text")
                return list(map(parse, map(str.__add__, values, repeat("+00:00"))))
            return [aware(parse(v)) for v in values]
        except ValueError as exc:
            raise Unsure(str(exc)) from None

    def aware(value: datetime.datetime) -> datetime.datetime:
        if zone is None:
            return value
        if value.tzinfo is not None:
            raise Unsure("an offset in the text")
        return value.replace(tzinfo=zone)

    return convert


def sqlite_dates(values: Sequence[Any]) -> Any:
    """Stored text to dates: ``parse_date`` is ``date.fromisoformat`` for any text that parses."""
    kinds = types_of(values)
    if not kinds <= {str, NoneType}:
        raise Unsure("not text")
    parse = datetime.date.fromisoformat
    try:
        if NoneType in kinds:
            return [None if v is None else parse(v) for v in values]
        return list(map(parse, values))
    except ValueError as exc:
        raise Unsure(str(exc)) from None


#: A ``bool`` column's stored integers as the driver's ``b"1".__eq__`` and then Django make them.
BOOLEANS = {0: False, 1: True, None: None}


def sqlite_booleans(values: Sequence[Any]) -> Any:
    """Stored 0 and 1 to False and True (NULL to None); else Unsure (the driver compares its text with 1)."""
    if not types_of(values) <= {int, NoneType}:
        raise Unsure("not an integer")
    try:
        return list(map(BOOLEANS.__getitem__, values))
    except KeyError as exc:
        raise Unsure(f"{exc} in a boolean column") from None


def hex_uuids(values: Sequence[Any]) -> Any:
    """32 hexadecimal digits to UUIDs, as ``uuid.UUID(text)`` makes them, without its checks per value.

    ``UUID(hex)`` takes out dashes, braces and "urn:uuid:" (then the length is not
    32), checks there are 32 characters and calls ``int(hex, 16)``: for text of
    exactly 32 characters whose integer is not negative that is all it does, and the
    instance it makes holds that integer and ``SafeUUID.unknown``.
    """
    if types_of(values) != {str} or set(map(len, values)) != {32}:
        raise Unsure("not 32 characters of text")
    try:
        numbers = list(map(int, values, repeat(16)))
    except ValueError as exc:
        raise Unsure(str(exc)) from None
    if min(numbers) < 0:
        raise Unsure("a negative number")
    made = list(map(object.__new__, repeat(uuid.UUID, len(numbers))))
    deque(map(object.__setattr__, made, repeat("int"), numbers), maxlen=0)  # UUID.__setattr__ refuses
    deque(map(object.__setattr__, made, repeat("is_safe"), repeat(uuid.SafeUUID.unknown)), maxlen=0)
    return made


def sqlite_decimals(expression: Any) -> ColumnFunction:
    """Stored numbers to Decimal as Django's SQLite converter does: 15 significant digits, quantized for a column."""
    from django.db.models.expressions import Col

    create = decimal.Context(prec=15).create_decimal_from_float
    quantize: Callable[[Any, Any], decimal.Decimal] | None = None
    exponent = decimal.Decimal(1)
    if isinstance(expression, Col):
        exponent = exponent.scaleb(-expression.output_field.decimal_places)
        quantize = expression.output_field.context.quantize

    def convert(values: Sequence[Any]) -> list[Any]:
        if not types_of(values) <= {int, float}:
            raise Unsure("not a number")
        try:
            if quantize is None:
                return list(map(create, values))
            return list(map(quantize, map(create, values), repeat(exponent)))
        except (TypeError, decimal.DecimalException) as exc:
            raise Unsure(str(exc)) from None

    return convert
