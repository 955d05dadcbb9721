"""Building a search request's body from a query: a plain dict, or an ``elasticsearch.dsl`` query or ``Search``.

Pure functions, no I/O::

    build_body({"match": {"name": "kettle"}}, filter=[{"term": {"in_stock": True}}], sort=["-price"])
    # {"query": {"bool": {"must": [...], "filter": [...]}}, "sort": [{"price": "desc"}], "_source": False}
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from reindex.errors import BadQuery

#: What paging sets itself: dropped from a ``Search`` handed in (its slice is not the page).
PAGING_KEYS = ("from", "size", "search_after", "pit", "track_total_hits")

#: The sort that breaks ties between equal sort values by default: the document id.
TIEBREAKER = "_id"


def as_plain(value: Any) -> Any:
    """A deep copy of ``value`` as plain dicts and lists (``elasticsearch.dsl`` objects through ``to_dict()``)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return copy.deepcopy(value)


def is_dsl_search(value: Any) -> bool:
    """True for an ``elasticsearch.dsl`` ``Search`` (a whole request), false for a query or a dict."""
    return hasattr(value, "to_dict") and hasattr(value, "execute") and hasattr(value, "query")


def build_body(
    query: Any = None,
    *,
    filter: Any = None,
    sort: Any = None,
    aggs: Any = None,
    highlight: Any = None,
    source: Any = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of a search request, paging left out; keyword arguments win over what a ``Search`` says."""
    body: dict[str, Any] = {}
    if is_dsl_search(query):
        body = {k: v for k, v in query.to_dict().items() if k not in PAGING_KEYS}
        query = body.pop("query", None)
    elif query is not None:
        query = as_plain(query)
        if not isinstance(query, dict):
            raise BadQuery(f"a query is a dict (the body's 'query'), not {type(query).__name__}")
    filters = _clauses(filter)
    if filters:
        query = {"bool": {"must": [query or {"match_all": {}}], "filter": filters}}
    if query is not None:
        body["query"] = query
    for key, value in (("sort", sort), ("aggs", aggs), ("highlight", highlight)):
        if value is not None:
            body[key] = normalise_sort(value) if key == "sort" else as_plain(value)
    if "sort" in body:
        body["sort"] = normalise_sort(body["sort"])
    body.setdefault("_source", as_plain(source))
    body.update(as_plain(dict(extra or {})))
    return body


def _clauses(filter: Any) -> list[Any]:
    if filter is None:
        return []
    if isinstance(filter, Sequence) and not isinstance(filter, (str, bytes)):
        return [as_plain(clause) for clause in filter]
    return [as_plain(filter)]


def normalise_sort(sort: Any) -> list[Any]:
    """A sort as a list of clauses; ``"-price"`` is ``{"price": "desc"}``, as in Django's ``order_by``."""
    items = [sort] if isinstance(sort, (str, dict)) else list(sort)
    clauses: list[Any] = []
    for item in items:
        if isinstance(item, str) and item.startswith("-"):
            clauses.append({item[1:]: "desc"})
        else:
            clauses.append(as_plain(item))
    return clauses


def sort_fields(sort: list[Any]) -> list[str]:
    """The field each sort clause sorts on."""
    return [clause if isinstance(clause, str) else next(iter(clause)) for clause in sort]


def with_tiebreaker(sort: list[Any] | None, tiebreaker: str) -> list[Any]:
    """The sort of a cursor's pages: the query's (relevance when none), then ``tiebreaker`` unless it is there."""
    clauses = list(sort) if sort else ["_score"]
    if tiebreaker not in sort_fields(clauses):
        clauses.append({tiebreaker: "asc"})
    return clauses


def fingerprint(body: Mapping[str, Any]) -> str:
    """A short digest of a body: a cursor made for one query is refused by another."""
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
