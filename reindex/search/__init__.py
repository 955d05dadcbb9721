"""The search side: from a user's query to a full, stable page of rows (docs/search.md).

``reindex.search()`` returns a lazy result: nothing is sent until it is sliced,
iterated, counted or its aggregations are read. Rows come from the definition's own
queryset, in hit order, each carrying its hit; a hit whose row is gone is dropped and
the page topped up. Offset pages work with Django's ``Paginator``; cursors
(``results.after(cursor)``) go as deep as the index, stable across a rebuild's swap::

    import reindex
    from django.core.paginator import Paginator

    results = reindex.search("products", {"match": {"name": q}}, page=request.GET.get("page"))
    page = Paginator(results, 20).get_page(request.GET.get("page"))
    for product in page:
        product.search_hit.highlight

Internal modules: the public names are exported by ``reindex`` (``reindex.search()``,
``reindex.SearchResults``, ``reindex.SearchHit``, ``reindex.CursorPage``).
Imports queue/ and below.
"""

from __future__ import annotations

from reindex.search.results import CursorPage, SearchResults
from reindex.search.rows import HIT_ATTRIBUTE, SearchHit
from reindex.search.searching import search

__all__ = ["HIT_ATTRIBUTE", "CursorPage", "SearchHit", "SearchResults", "search"]
