"""Filters on a list of keys whose statement is the same however long the list: ``= ANY(%s)`` on PostgreSQL.

``pk IN (%s, %s, ...)`` with a thousand keys is a statement of a thousand placeholders:
the ORM prepares each value as an expression, psycopg parses the long text again on
every call (it keeps parsed statements up to 4 KiB only) and PostgreSQL plans it anew.
One array parameter does the same with a short statement, parsed once and reused. Other
databases have no array parameter and keep ``IN``::

    rows = keys_filter(Product.objects.values("pk", "name"), "pk", [3, 1, 2])
    sql, params = keys_sql(connection, "object_id", ["3", "1", "2"])  # ("object_id = ANY(%s)", [[...]])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any


def keys_filter(queryset: Any, field: str, keys: Sequence[Any]) -> Any:
    """``queryset`` narrowed to the rows whose ``field`` is one of ``keys``: one array parameter on PostgreSQL.

    An empty list keeps ``__in`` (the ORM then runs no query at all).
    """
    from django.db import connections
    from django.db.models import F

    if keys and connections[queryset.db].vendor == "postgresql":
        return queryset.filter(_any_of()(F(field), list(keys)))
    return queryset.filter(**{f"{field}__in": keys})


def keys_sql(connection: Any, column: str, keys: Sequence[Any]) -> tuple[str, list[Any]]:
    """The condition ``column`` is one of ``keys`` (non-empty), and its parameters, for a raw statement."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(keys)]
    return f"{column} IN ({', '.join(['%s'] * len(keys))})", list(keys)


#: Fields whose values, when already ``int``, need no preparing (a drain's keys, read from the queue).
_INTEGERS = frozenset(
    ("AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField")
)


@functools.cache
def _any_of() -> type:
    """The lookup ``lhs = ANY(%s)`` with the list as one parameter (Django imported only when first needed)."""
    from django.db.models import Lookup

    class AnyOf(Lookup):  # type: ignore[type-arg]
        lookup_name = "reindex_any_of"
        prepare_rhs = False

        def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
            lhs, params = self.process_lhs(compiler, connection)
            field, values = self.lhs.output_field, self.rhs
            if not (field.get_internal_type() in _INTEGERS and all(type(value) is int for value in values)):
                values = [field.get_db_prep_value(value, connection) for value in values]  # ints go as they are
            return f"{lhs} = ANY(%s)", [*params, values]

    return AnyOf
