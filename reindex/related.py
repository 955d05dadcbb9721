"""Related rows attached to each batch's rows: one query per relation and batch, grouped in one pass.

A definition declares what its documents draw from other tables, and ``prepare()``
finds each row's related rows under the relation's name, a list (empty when there
are none)::

    class ProductRowsIndex(IndexDefinition):
        related = {
            "sellers": Related(
                Product.sellers.through.objects.order_by("seller_id").values("seller_id", "seller__name"),
                by="product_id",  # the related rows' field that holds the row's key
            ),
        }

        def prepare(self, row):
            return {"sellers": [{"id": s["seller_id"], "name": s["seller__name"]} for s in row["sellers"]]}

Per batch, the related rows whose ``by`` is one of the batch's keys are read with one
query: by the range from the smallest key to the largest when the keys are close
integers (a rebuild's batch: one range scan), else by ``IN`` (``reindex update``'s
changed rows, spread over the table). ``values()`` querysets are read on the database
cursor like the rows themselves (``reindex.rows``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reindex.errors import ConfigurationError


@dataclass(frozen=True)
class Related:
    """Rows of ``queryset`` grouped by their field ``by``, attached to each row whose ``key`` matches.

    ``key``: the field of the definition's rows that ``by`` refers to (default their
    primary key: ``"pk"``, or ``"id"`` for a dict without ``"pk"``). Order the queryset
    so that a row's list comes out the same every time (``reindex verify`` compares).
    """

    queryset: Any
    by: str
    key: str = "pk"

    def groups(self, keys: Sequence[Any], *, cursor: bool = True) -> dict[Any, list[Any]]:
        """The related rows of these keys, a list per key, read with one query (on the cursor unless not ``cursor``)."""
        from reindex.rows import read_rows

        wanted = sorted({k for k in keys if k is not None}, key=_sort_key)
        grouped: dict[Any, list[Any]] = defaultdict(list)
        if not wanted:
            return grouped
        if close_integers(wanted):
            queryset = self.queryset.filter(**{f"{self.by}__gte": wanted[0], f"{self.by}__lte": wanted[-1]})
        else:
            queryset = self.queryset.filter(**{f"{self.by}__in": wanted})
        by = self.by
        for row in read_rows(queryset) if cursor else queryset:
            grouped[field_value(row, by)].append(row)
        return grouped


def attach_related(related: Mapping[str, Related], rows: Sequence[Any], *, cursor: bool = True) -> None:
    """Give each row its related rows: ``row[name]`` for a dict, ``row.<name>`` for a model instance."""
    for name, relation in related.items():
        keys = [field_value(row, relation.key) for row in rows]
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


def close_integers(keys: Sequence[Any]) -> bool:
    """True for sorted integer keys spread over less than twice their number (one range scan reads them best)."""
    if not all(type(k) is int for k in keys):
        return False
    return keys[-1] - keys[0] < 2 * len(keys)


def _sort_key(value: Any) -> Any:
    return (type(value).__name__, value)
