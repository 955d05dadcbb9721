"""From hits to rows: one query through the definition's own queryset, in hit order, each row carrying its hit.

A hit whose row the queryset no longer returns (deleted, soft-deleted, filtered out)
is dropped; the caller tops the page up::

    matched, dropped = load_rows(definition, definition.get_queryset(), hits)
    [(hit, row) for hit, row in matched]  # row.search_hit is hit
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex.database.rows import row_pk
from reindex.definitions.definition import IndexDefinition

#: The attribute (the key, for a ``values()`` row) under which each row carries its ``SearchHit``.
HIT_ATTRIBUTE = "search_hit"


@dataclass(frozen=True)
class SearchHit:
    """What the server said of one row: its document id, index, score, sort values, highlight fragments."""

    id: str
    index: str
    score: float | None = None
    #: The hit's sort values (what a cursor continues after); None when the search was not sorted.
    sort: list[Any] | None = None
    #: Highlighted fragments by field: ``{"name": ["red <em>kettle</em>"]}``.
    highlight: dict[str, list[str]] = field(default_factory=dict)
    #: The document's ``_source`` when the search asked for it (``source=True`` or a list of fields).
    source: dict[str, Any] | None = None

    @classmethod
    def from_raw(cls, hit: dict[str, Any]) -> SearchHit:
        return cls(
            id=str(hit["_id"]),
            index=str(hit.get("_index", "")),
            score=hit.get("_score"),
            sort=hit.get("sort"),
            highlight=hit.get("highlight") or {},
            source=hit.get("_source"),
        )


def load_rows(
    definition: IndexDefinition, queryset: Any, hits: list[SearchHit]
) -> tuple[list[tuple[SearchHit, Any]], list[SearchHit]]:
    """The rows of ``hits`` in hit order as ``(hit, row)`` pairs, and the hits that have no row.

    One query (plus the queryset's own ``prefetch_related`` lookups); none for no hits.
    """
    keys = {hit.id: pk for hit in hits if (pk := pk_of(definition, hit.id)) is not None}
    rows = {}
    if keys:
        rows = {row_pk(row): row for row in queryset.order_by().filter(pk__in=set(keys.values()))}
    matched, dropped = [], []
    for hit in hits:
        row = rows.get(keys.get(hit.id, _MISSING))
        if row is None:
            dropped.append(hit)
            continue
        attach(row, hit)
        matched.append((hit, row))
    return matched, dropped


_MISSING = object()


def pk_of(definition: IndexDefinition, doc_id: str) -> Any:
    """The primary key of the row document ``doc_id`` belongs to (``pk_from_id``); None for an id no row can have."""
    from django.core.exceptions import ValidationError

    try:
        return definition.pk_from_id(doc_id)
    except (ValidationError, ValueError, TypeError, LookupError):
        return None


def attach(row: Any, hit: SearchHit) -> None:
    """Give ``row`` its hit: an attribute of a model instance, a key of a ``values()`` dict."""
    if isinstance(row, dict):
        row[HIT_ATTRIBUTE] = hit
    else:
        setattr(row, HIT_ATTRIBUTE, hit)
