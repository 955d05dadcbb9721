"""``reindex.search()``: a query against a definition's alias, as a lazy result of rows.

The site's configuration and definitions are resolved once per process (again when a
test changes ``settings.REINDEX``); calling ``search()`` sends nothing::

    results = search("products", {"match": {"name": "kettle"}}, filter={"term": {"in_stock": True}})
    for product in results:  # one search request, one SQL query
        print(product.name, product.search_hit.score)
"""

from __future__ import annotations

import threading
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import Registry, Target, discover
from reindex.search.client import search_client
from reindex.search.query import TIEBREAKER, build_body
from reindex.search.results import SearchResults

_site: dict[str, Any] = {}
_lock = threading.Lock()


def search(
    target: Target,
    query: Any = None,
    *,
    filter: Any = None,
    sort: Any = None,
    aggs: Any = None,
    highlight: Any = None,
    source: Any = False,
    extra: dict[str, Any] | None = None,
    per_page: int = 20,
    page: Any = None,
    queryset: Any = None,
    tiebreaker: str = TIEBREAKER,
    config: Config | None = None,
    **overrides: Any,
) -> SearchResults:
    """Search ``target``'s alias; the rows come from its definition's ``get_queryset()`` (or ``queryset``).

    ``query``: the body's ``query`` as a dict, an ``elasticsearch.dsl`` query, or a whole
    ``Search``. ``filter``: clauses added to a ``bool`` filter (no scoring). ``sort``:
    clauses, ``"-price"`` for descending; relevance when None. ``aggs``, ``highlight``,
    ``source`` (``_source``: False, True or fields) go into the body as given; ``extra``
    adds any other body key. ``per_page``: rows per page when iterated or read by
    cursor; ``page``: the page number a view will ask for (``request.GET.get("page")``),
    so that ``count()`` reads it in the same request. ``tiebreaker``: the unique field
    cursor pages sort on last. Overrides of settings by their lowercase names
    (``es_url=...``, ``search_timeout=0.5``) resolve a configuration for this call.
    """
    config = _config(config, overrides)
    [definition] = _registry(config).select([target])
    definition.check_ids()
    body = build_body(query, filter=filter, sort=sort, aggs=aggs, highlight=highlight, source=source, extra=extra)
    return SearchResults(
        definition,
        search_client(config),
        body,
        config,
        queryset=queryset,
        per_page=per_page,
        page=page,
        tiebreaker=tiebreaker,
    )


def _config(config: Config | None, overrides: dict[str, Any]) -> Config:
    if config is not None:
        return config.replace(**overrides) if overrides else config
    with _lock:
        if "config" not in _site:
            _site["config"] = Config.load()
        base = _site["config"]
    return base.replace(**overrides) if overrides else base


def _registry(config: Config) -> Registry:
    key = (config.indexes, config.autodiscover)
    with _lock:
        registries = _site.setdefault("registries", {})
        if key not in registries:
            registries[key] = discover(config)
        return registries[key]


def forget_site(**kwargs: Any) -> None:
    """Resolve the configuration and definitions again at the next search (``settings.REINDEX`` changed)."""
    if kwargs.get("setting") in (None, "REINDEX", "INSTALLED_APPS"):
        with _lock:
            _site.clear()


def _connect_settings_signal() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(forget_site, dispatch_uid="reindex.search.forget_site")


_connect_settings_signal()
