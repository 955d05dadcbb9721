"""The lazy result of ``reindex.search()``: full pages of rows, by offset (Django's ``Paginator``) or by cursor.

Nothing is sent until the result is sliced, iterated, counted or its aggregations are
read. Each page is one search request and one query for its rows; a hit whose row is
gone is dropped and the page topped up from the hits after it, one more request each
time, so that it holds ``per_page`` rows whenever that many exist::

    results = reindex.search("products", {"match": {"name": "kettle"}}, per_page=20)
    page = Paginator(results, 20).page(2)  # one search (from=20, size=20), one SQL query
    more = results.after(request.GET.get("cursor"))  # CursorPage: .rows, .next_cursor
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.search.client import SearchClient
from reindex.search.cursors import Cursor
from reindex.search.healing import heal
from reindex.search.query import TIEBREAKER, fingerprint, with_tiebreaker
from reindex.search.rows import SearchHit, load_rows

#: Top-up requests a page may take at most before it is served short (an index mostly stale).
MAX_TOP_UPS = 4

#: One request of a page: ``fetch(size, seen, last)`` -> the server's answer, where ``seen``
#: hits were read before it and ``last`` is the last of them.
Fetch = Callable[[int, int, "SearchHit | None"], dict[str, Any]]


@dataclass
class Filled:
    """One page as read: its rows and their hits, the hits dropped, the first answer, the requests sent."""

    rows: list[Any] = field(default_factory=list)
    hits: list[SearchHit] = field(default_factory=list)
    dropped: list[SearchHit] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)
    #: The last hit read (shown or dropped): where the next page starts.
    last: SearchHit | None = None
    #: Whether hits remain after ``last``.
    more: bool = False
    searches: int = 0


@dataclass
class CursorPage:
    """One page read by cursor: its rows, the cursor of the next page (None on the last), the hits dropped."""

    rows: list[Any]
    next_cursor: str | None
    dropped: int = 0
    #: The number of matching documents, up to ``REINDEX["SEARCH_TOTAL_BOUND"]``.
    total: int = 0
    #: Search requests this page took (1, plus one per top-up).
    searches: int = 0

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class SearchResults:
    """The lazy result of ``reindex.search()``; see the module's docstring and docs/search.md."""

    def __init__(
        self,
        definition: IndexDefinition,
        client: SearchClient,
        body: dict[str, Any],
        config: Config,
        *,
        queryset: Any = None,
        per_page: int = 20,
        page: Any = None,
        tiebreaker: str = "_id",
    ) -> None:
        self.definition, self.client, self.body, self.config = definition, client, body, config
        self.per_page = int(per_page)
        self.tiebreaker = tiebreaker
        self._queryset = queryset
        self._hinted_page = _page_number(page)
        self._pages: dict[tuple[int, int], Filled] = {}
        self._first: dict[str, Any] | None = None
        #: Every hit dropped by the pages this object read so far.
        self.dropped_hits: list[SearchHit] = []
        #: Search requests this object sent so far.
        self.searches = 0

    # -- what Django's Paginator and ListView use ------------------------------------
    @property
    def queryset(self) -> Any:
        """The queryset rows are read through: the one given, else the definition's ``get_queryset()``."""
        if self._queryset is None:
            self._queryset = self.definition.get_queryset()
        return self._queryset

    @property
    def model(self) -> Any:
        """The rows' model (``ListView`` names its context ``<model>_list`` after it)."""
        return self.queryset.model

    def count(self) -> int:
        """The number of matching documents, from the server, up to ``REINDEX["SEARCH_TOTAL_BOUND"]``.

        Rows dropped (their documents are stale) are not taken off: the last page may hold fewer.
        The first call reads the page ``page=`` named (the first by default) in the same request.
        """
        return _total(self._answer())[0]

    def __len__(self) -> int:
        return self.count()

    @property
    def total_is_exact(self) -> bool:
        """False when more documents match than ``count()`` says (it stopped at the bound)."""
        return _total(self._answer())[1] == "eq"

    @property
    def aggregations(self) -> dict[str, Any]:
        """The ``aggregations`` of the answer (read with the first page when nothing was read yet)."""
        return dict(self._answer().get("aggregations") or {})

    @property
    def dropped(self) -> int:
        """How many hits the pages read so far dropped because their rows are gone."""
        return len(self.dropped_hits)

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, int):
            if key < 0:
                raise ValueError("negative indexing is not supported")
            rows = self[key : key + 1]
            if not rows:
                raise IndexError("search result index out of range")
            return rows[0]
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("search results take an index or a slice without a step")
        start = key.start or 0
        stop = start + self.per_page if key.stop is None else key.stop
        if start < 0 or stop < 0:
            raise ValueError("negative indexing is not supported")
        if stop <= start:
            return []
        return self._offset_page(start, stop).rows[: stop - start]

    def __iter__(self) -> Iterator[Any]:
        """The rows of the page ``page=`` named (the first by default), as ``elasticsearch.dsl``'s ``Search`` does."""
        start = (self._hinted_page - 1) * self.per_page
        return iter(self[start : start + self.per_page])

    def __bool__(self) -> bool:
        return self.count() > 0

    # -- cursors -------------------------------------------------------------------------
    def after(self, cursor: str | None = None, *, keep_alive: str | None = None) -> CursorPage:
        """The page after ``cursor`` (the first page when None or ""), read by ``search_after``.

        The first page pins the concrete index behind the alias, or, with ``keep_alive``
        (e.g. ``"5m"``), opens a point in time; the cursor of the next page carries it.
        Raises InvalidCursor for a cursor not made here for this query, CursorExpired
        once its index or point in time is gone.
        """
        key = fingerprint(self.body)
        if cursor:
            return self._next_page(Cursor.decode(cursor, key))
        if keep_alive:
            pit = self.client.open_point_in_time(self.definition.alias, keep_alive)
            # Elasticsearch refuses to sort on _id by default; in a point in time _shard_doc is unique.
            elastic = self.client.distribution == "elasticsearch" and self.tiebreaker == TIEBREAKER
            tiebreaker = "_shard_doc" if elastic else self.tiebreaker
            start = Cursor(key, [], pit=pit, keep_alive=keep_alive, tiebreaker=tiebreaker)
            return self._next_page(start)
        return self._next_page(Cursor(key, [], tiebreaker=self.tiebreaker))

    def _next_page(self, cursor: Cursor) -> CursorPage:
        first = not cursor.after
        body = {**self.body, "sort": with_tiebreaker(self.body.get("sort"), cursor.tiebreaker)}
        if not first:
            body.pop("aggs", None)
            body["search_after"] = cursor.after
        index = None if cursor.pit else ",".join(cursor.indexes or (self.definition.alias,))
        pinned = bool(cursor.pit or cursor.indexes)
        state = {"pit": cursor.pit}

        def fetch(size: int, seen: int, last: SearchHit | None) -> dict[str, Any]:
            request = {**body, "size": size, "track_total_hits": self.config.search_total_bound if not seen else False}
            if last is not None:
                request["search_after"] = last.sort
            if state["pit"]:
                request["pit"] = {"id": state["pit"], "keep_alive": cursor.keep_alive}
            answer = self.client.search(index, request, pinned=pinned)
            state["pit"] = answer.get("pit_id") or state["pit"]
            return answer

        filled = self._fill(fetch)
        next_cursor = None
        if filled.more and filled.last is not None:
            read = filled.hits + filled.dropped
            indexes = cursor.indexes or (() if cursor.pit else tuple(sorted({hit.index for hit in read})))
            after = list(filled.last.sort or [])
            next_cursor = replace(cursor, after=after, indexes=indexes, pit=state["pit"]).encode()
        elif state["pit"]:
            self.client.close_point_in_time(state["pit"])
        total = _total(filled.response)[0] if filled.response else 0
        return CursorPage(filled.rows, next_cursor, len(filled.dropped), total, filled.searches)

    # -- reading pages -------------------------------------------------------------------
    def _answer(self) -> dict[str, Any]:
        """The first answer read (the hinted page's), reading it now if none was."""
        if self._first is None:
            start = (self._hinted_page - 1) * self.per_page
            if start + self.per_page > self.config.search_total_bound:
                start = 0  # beyond the window a page cannot be read by offset; count from the first
            self._offset_page(start, start + self.per_page)
        assert self._first is not None
        return self._first

    def _offset_page(self, start: int, stop: int) -> Filled:
        for (cached_start, cached_stop), filled in self._pages.items():
            if cached_start == start and stop <= cached_stop:
                return filled

        def fetch(size: int, seen: int, last: SearchHit | None) -> dict[str, Any]:
            request = {**self.body, "from": start + seen, "size": size}
            request["track_total_hits"] = self.config.search_total_bound if not seen else False
            if seen:
                request.pop("aggs", None)
            return self.client.search(self.definition.alias, request)

        filled = self._pages[(start, stop)] = self._fill(fetch, stop - start, start)
        return filled

    def _fill(self, fetch: Fetch, want: int | None = None, start: int | None = None) -> Filled:
        """Read hits and their rows until ``want`` rows (``per_page``) or the hits run out.

        ``start``: the offset of the first hit, when read by offset: the exact total then
        tells that no hit follows without asking.
        """
        want = self.per_page if want is None else want
        filled, size = Filled(), want
        while True:
            answer = fetch(size, len(filled.hits) + len(filled.dropped), filled.last)
            filled.searches += 1
            self.searches += 1
            if not filled.response:
                filled.response = answer
                if self._first is None and ("aggs" not in self.body or "aggregations" in answer):
                    self._first = answer  # a later cursor page's answer has no aggregations: not this one
            batch = [SearchHit.from_raw(hit) for hit in answer["hits"]["hits"]]
            matched, _ = load_rows(self.definition, self.queryset, batch)
            rows = {id(hit): row for hit, row in matched}
            read = 0
            for hit in batch:
                if len(filled.rows) == want:
                    break
                read += 1
                filled.last = hit
                if id(hit) in rows:
                    filled.rows.append(rows[id(hit)])
                    filled.hits.append(hit)
                else:
                    filled.dropped.append(hit)
            filled.more = read < len(batch) or (len(batch) == size and not _all_read(filled, start))
            if len(filled.rows) >= want or not filled.more or filled.searches > MAX_TOP_UPS:
                break
            size = _top_up_size(want - len(filled.rows), len(filled.dropped), len(filled.hits) + len(filled.dropped))
        self.dropped_hits += filled.dropped
        heal(self.definition, filled.dropped, self.config)
        return filled


def _all_read(filled: Filled, start: int | None) -> bool:
    """Whether the hits read reach the exact total (known for offset pages only)."""
    value, relation = _total(filled.response)
    return start is not None and relation == "eq" and start + len(filled.hits) + len(filled.dropped) >= value


def _top_up_size(need: int, dropped: int, read: int) -> int:
    """Hits to ask for to find ``need`` more rows, when ``dropped`` of the ``read`` so far had none."""
    kept = 1 - dropped / read if read else 1
    return min(max(need, 1) * 10, math.ceil(need / max(kept, 0.1)) + 2)


def _total(answer: dict[str, Any]) -> tuple[int, str]:
    total = answer.get("hits", {}).get("total", 0)
    if isinstance(total, dict):
        return int(total.get("value", 0)), str(total.get("relation", "eq"))
    return int(total), "eq"


def _page_number(page: Any) -> int:
    """The 1-based page a view will ask for (``request.GET.get("page")``); 1 when it is not a number."""
    try:
        number = int(page)
    except (TypeError, ValueError):
        return 1
    return max(number, 1)
