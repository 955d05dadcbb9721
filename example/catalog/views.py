"""The shop's search page: a query box, a page of products with their highlighted names, pagination.

Importing this module connects to nothing; the first search does. When the search
server is down or slow the page says so (503) and the rest of the site works.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import reindex

PER_PAGE = 20


def search(request: HttpRequest) -> HttpResponse:
    """``/search/?q=teapot&page=2``: the products matching ``q``, 20 a page, best first."""
    q = request.GET.get("q", "").strip()
    number = request.GET.get("page")
    context: dict[str, Any] = {"q": q}
    if not q:
        return render(request, "catalog/search.html", context)
    results = reindex.search(
        "products",
        {"multi_match": {"query": q, "fields": ["name^3", "description", "category.name"]}},
        highlight={"fields": {"name": {"number_of_fragments": 0}}},
        page=number,  # count() reads this page in the same request
    )
    try:
        context["page"] = Paginator(results, PER_PAGE).get_page(number)
    except reindex.SearchUnavailable:
        return render(request, "catalog/search.html", {**context, "unavailable": True}, status=503)
    except reindex.BadQuery as exc:
        return render(request, "catalog/search.html", {**context, "bad_query": str(exc)}, status=400)
    return render(request, "catalog/search.html", context)
