"""The documents an index holds, read back: every id page by page, sources by id, a random few.

Every id is walked with a scroll in ``_doc`` order, the cheapest order, in pages of a
fixed size: memory is bounded by the page, there is no ``index.max_result_window``
limit, and the scroll sees the index as it was when the walk began, so deleting
documents along the way is safe. (Sorting on ``_id`` would give id order, but
Elasticsearch 8 and later refuse it by default: ``indices.id_field_data.enabled``.
Scroll works alike on Elasticsearch 8 and 9 and on OpenSearch.)::

    for page in id_pages(client, "products-2026...", 1000):
        ...  # a list of up to 1000 document ids
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

#: How long the server keeps a scroll between two pages.
SCROLL_KEEP_ALIVE = "5m"


def id_pages(client: Any, index: str, size: int) -> Iterator[list[str]]:
    """The ids of every document of ``index``, in pages of ``size``, as they were when the walk began."""
    from elasticsearch.helpers import scan

    page: list[str] = []
    for hit in scan(client, index=index, size=size, scroll=SCROLL_KEEP_ALIVE, _source=False):
        page.append(hit["_id"])
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def sources(client: Any, index: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored ``_source`` of each of ``ids`` that ``index`` holds, by id (one ``_mget``, realtime)."""
    ids = list(ids)
    if not ids:
        return {}
    docs = client.mget(index=index, ids=ids)["docs"]
    return {doc["_id"]: doc["_source"] for doc in docs if doc.get("found")}


def random_ids(client: Any, index: str, count: int) -> list[str]:
    """The ids of up to ``count`` documents of ``index`` picked at random."""
    query: dict[str, Any] = {"function_score": {"query": {"match_all": {}}, "random_score": {}}}
    hits = client.search(index=index, size=count, query=query, source=False)["hits"]["hits"]
    return [hit["_id"] for hit in hits]
