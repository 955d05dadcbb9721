"""Related rows attached to each batch's rows: one query per relation and batch, grouped in one pass.

A definition declares what its documents draw from other tables, and ``prepare()``
finds each row's related rows under the relation's name, a list (empty when there
are none)::

    class ProductRowsIndex(IndexDefinition):
        related = {
            "sellers": Related(
                Product.sellers.through.objects.order_by("seller_id").values("product_id", "seller_id", "seller__name"),
                by="product_id",  # the related rows' field that holds the row's key (left out of each dict)
            ),
        }

        def prepare(self, row):
            return {"sellers": [{"id": s["seller_id"], "name": s["seller__name"]} for s in row["sellers"]]}

Per batch, the related rows whose ``by`` is one of the batch's keys are read with one
query: by the range from the smallest key to the largest when the keys are close
integers (a rebuild's batch: one range scan), else by ``IN`` (``reindex update``'s
changed rows, spread over the table). ``values()`` querysets are read on the database
cursor like the rows themselves (``reindex.database.rows``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reindex.errors import ConfigurationError


@dataclass(frozen=True)
class Related:
    """Rows of ``queryset`` grouped by their field ``by``, attached to each row whose ``key`` matches.

    ``key``: the field of the definition's rows that ``by`` refers to (default their
    primary key: ``"pk"``, or ``"id"`` for a dict without ``"pk"``). A ``values()`` row
    comes without ``by`` (its list is found by it), so that with the fields named as the
    document names them (``values("product_id", name=F("seller__name"))``) it can go
    into the document as it is. Order the queryset so that a row's list comes out the
    same every time (``reindex verify`` compares).
    """

    queryset: Any
    by: str
    key: str = "pk"

    def groups(self, keys: Sequence[Any], *, cursor: bool = True) -> dict[Any, list[Any]]:
        """The related rows of these keys, a list per key, read with one query (on the cursor unless not ``cursor``)."""
        from reindex.database.rows import plain_values, read_grouped

        wanted = sorted_keys(keys)
        if not wanted:
            return {}
        if close_integers(wanted):
            queryset = self.queryset.filter(**{f"{self.by}__gte": wanted[0], f"{self.by}__lte": wanted[-1]})
        else:
            queryset = self.queryset.filter(**{f"{self.by}__in": wanted})
        if cursor and plain_values(queryset):
            return read_grouped(queryset, self.by)
        return group(queryset, self.by)


def group(rows: Iterable[Any], by: str) -> dict[Any, list[Any]]:
    """Rows in lists by their field ``by``; a ``values()`` dict loses that field (the list is found by it)."""
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        if isinstance(row, dict):
            grouped[field_value(row, by)].append({name: value for name, value in row.items() if name != by})
        else:
            grouped[field_value(row, by)].append(row)
    return grouped


def attach_related(related: Mapping[str, Related], rows: Sequence[Any], *, cursor: bool = True) -> None:
    """Give each row its related rows: ``row[name]`` for a dict, ``row.<name>`` for a model instance."""
    for name, relation in related.items():
        keys = field_values(rows, relation.key)
        groups = relation.groups(keys, cursor=cursor)
        for row, key in zip(rows, keys, strict=True):
            found = groups.get(key, [])
            if isinstance(row, dict):
                row[name] = found
            else:
                setattr(row, name, found)


def field_value(row: Any, name: str) -> Any:
    """A field of a ``values()`` dict or a model instance; ConfigurationError when it has none."""
    if isinstance(row, dict):
        if name in row:
            return row[name]
        if name == "pk" and "id" in row:
            return row["id"]
        raise ConfigurationError(f"related rows: a row has no {name!r} (add it to the queryset's values())")
    try:
        return getattr(row, name)
    except AttributeError:
        raise ConfigurationError(f"related rows: a {type(row).__name__} has no {name!r}") from None


def field_values(rows: Sequence[Any], name: str) -> list[Any]:
    """``field_value()`` of every row; one list comprehension for dicts that all have the field."""
    if rows and isinstance(rows[0], dict) and name in rows[0]:
        try:
            return [row[name] for row in rows]
        except (KeyError, TypeError):
            pass  # rows of several shapes: one by one, for the error
    return [field_value(row, name) for row in rows]


def sorted_keys(keys: Sequence[Any]) -> list[Any]:
    """The distinct keys but None, sorted (by type name first when they are of several types)."""
    distinct = set(keys)
    distinct.discard(None)
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=lambda value: (type(value).__name__, value))


def close_integers(keys: Sequence[Any]) -> bool:
    """True for sorted integer keys (of one field) spread over less than twice their number: one range scan."""
    return type(keys[0]) is int and type(keys[-1]) is int and keys[-1] - keys[0] < 2 * len(keys)
