"""``reindex.testing``: a site's own tests get a server, settings pointed at it, and aliases built and removed."""

from __future__ import annotations

import os

import reindex
from reindex.testing import delete_indexes


def test_a_test_searches_what_it_built_and_leaves_nothing_behind(search_indexes, search_server, catalog, settings):
    catalog(products=7)
    [result] = search_indexes("products")
    assert settings.REINDEX["HOSTS"] == [search_server] and os.environ["REINDEX_ES_URL"] == search_server
    assert result.indexed == 7 and reindex.search("products").count() == 7  # no es_url: the settings say where
    es = reindex.connect()
    delete_indexes(es, ["products"])  # what the fixture does after the test
    assert es.indices.get(index="products*", expand_wildcards="all", ignore_unavailable=True) == {}
    assert not es.indices.exists(index=reindex.load_config().lock_index)
