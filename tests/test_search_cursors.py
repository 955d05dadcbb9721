"""Deep, stable pagination by cursor: "load more" past the result window, across a rebuild's swap, in a point in time.

Against osmem-server (OpenSearch's point in time); Elasticsearch's ``/_pit`` through a
proxy that translates it (tests/httpproxy.py ``ElasticsearchProxy``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

import reindex
from reindex.search.cursors import Cursor
from reindex.search.query import fingerprint
from tests.helpers import live_index
from tests.httpproxy import ElasticsearchProxy, HttpProxy

BY_PRICE = [{"price": "asc"}]


def ordered_by_price(es: Any) -> list[int]:
    """The primary keys of the indexed products in the cursor's order: price, then id."""
    hits = es.search(index="products", size=100, sort=[{"price": "asc"}, {"_id": "asc"}], source=False)
    return [int(hit["_id"]) for hit in hits["hits"]["hits"]]


def walk(results: Any, keep_alive: str | None = None) -> tuple[list[int], int]:
    """Every row's primary key, page after page by cursor; and the number of pages."""
    page = results.after(keep_alive=keep_alive)
    pks, pages = [row.pk for row in page], 1
    while page.next_cursor:
        page = results.after(page.next_cursor)
        pks += [row.pk for row in page]
        pages += 1
    return pks, pages


def requests_to(proxy: HttpProxy, route: str) -> list[tuple[str, str, bytes]]:
    return [(method, path, body) for method, path, body in proxy.requests if path.split("?")[0].endswith(route)]


class TestLoadMore:
    def test_pages_by_cursor_hold_every_row_once_in_order(self, indexed_catalog, es):
        with HttpProxy(indexed_catalog) as proxy:
            results = reindex.search("products", sort=BY_PRICE, per_page=7, es_url=proxy.url)
            pks, pages = walk(results)
            assert pks == ordered_by_price(es)
            assert pages == 8 and len(requests_to(proxy, "/_search")) == 8  # one search a page
            second = json.loads(requests_to(proxy, "/_search")[1][2])
            assert second["sort"] == [{"price": "asc"}, {"_id": "asc"}] and len(second["search_after"]) == 2

    def test_a_cursor_is_url_safe_and_a_tampered_one_is_a_clean_error(self, indexed_catalog):
        results = reindex.search("products", sort=BY_PRICE, per_page=5, es_url=indexed_catalog)
        cursor = results.after().next_cursor
        assert cursor and quote(cursor, safe=":") == cursor  # nothing to escape in a query string
        forged = cursor[:-3] + ("AAA" if cursor[-3:] != "AAA" else "BBB")
        with pytest.raises(reindex.InvalidCursor, match="invalid cursor"):
            results.after(forged)
        with pytest.raises(reindex.BadQuery):  # what a view turns into a 400
            results.after("not-a-cursor")

    def test_a_cursor_serves_only_its_own_query(self, indexed_catalog):
        cheap_first = reindex.search("products", sort=BY_PRICE, per_page=5, es_url=indexed_catalog)
        cursor = cheap_first.after().next_cursor
        other = reindex.search("products", sort=["-price"], per_page=5, es_url=indexed_catalog)
        with pytest.raises(reindex.InvalidCursor, match="another query"):
            other.after(cursor)

    def test_cursors_go_beyond_the_result_window(self, indexed_catalog, es):
        order = ordered_by_price(es)
        es.indices.put_settings(index="products", settings={"index": {"max_result_window": 10}})
        results = reindex.search("products", sort=BY_PRICE, per_page=10, es_url=indexed_catalog)
        with pytest.raises(reindex.BadQuery, match="Result window is too large"):
            results[10:20]
        assert walk(results)[0] == order

    def test_a_page_with_rows_gone_is_topped_up_and_the_next_starts_after_it(self, indexed_catalog, es):
        from catalog.models import Product

        order = ordered_by_price(es)
        Product.objects.filter(pk__in=[order[2], order[3], order[9]]).delete()
        results = reindex.search("products", sort=BY_PRICE, per_page=5, es_url=indexed_catalog)
        first = results.after()
        assert [row.pk for row in first] == [order[0], order[1], order[4], order[5], order[6]]
        assert first.dropped == 2 and first.searches == 2
        second = results.after(first.next_cursor)
        assert [row.pk for row in second] == [order[7], order[8], order[10], order[11], order[12]]


def test_aggregations_come_with_the_first_cursor_page_only(indexed_catalog):
    aggs = {"stock": {"terms": {"field": "in_stock"}}}
    first_reader = reindex.search("products", sort=BY_PRICE, aggs=aggs, per_page=10, es_url=indexed_catalog)
    cursor = first_reader.after().next_cursor
    later_reader = reindex.search("products", sort=BY_PRICE, aggs=aggs, per_page=10, es_url=indexed_catalog)
    later_reader.after(cursor)  # sent without aggs: a page after the first needs none
    counts = {b["key"]: b["doc_count"] for b in later_reader.aggregations["stock"]["buckets"]}
    assert sum(counts.values()) == 50 and later_reader.searches == 2


class TestACursorAcrossARebuild:
    def open_first_page(self, es_url: str) -> tuple[Any, Any, str]:
        results = reindex.search("products", sort=BY_PRICE, per_page=10, es_url=es_url)
        return results, results.after(), live_index(reindex.connect(reindex.load_config(es_url=es_url)), "products")

    def test_it_keeps_reading_the_index_it_started_on_while_that_index_is_kept(self, indexed_catalog, es):
        from catalog.models import Product

        order = ordered_by_price(es)
        results, first, before = self.open_first_page(indexed_catalog)
        cheapest = Product.objects.get(pk=order[0])
        Product.objects.create(name="New cheapest", price="0.01", category=cheapest.category)
        reindex.rebuild("products", keep=1, es_url=indexed_catalog)
        assert live_index(es, "products") != before
        second = results.after(first.next_cursor)
        assert [row.pk for row in second] == order[10:20]
        assert {row.search_hit.index for row in second} == {before}
        # A new search reads the new index, with the new product first.
        assert reindex.search("products", sort=BY_PRICE, es_url=indexed_catalog)[0].name == "New cheapest"

    def test_it_expires_once_that_index_is_gone(self, indexed_catalog):
        results, first, _ = self.open_first_page(indexed_catalog)
        reindex.rebuild("products", keep=0, es_url=indexed_catalog)
        with pytest.raises(reindex.CursorExpired, match="start again"):
            results.after(first.next_cursor)


class TestPointInTime:
    def test_opensearch_pages_read_in_one_point_in_time_closed_after_the_last(self, indexed_catalog, es):
        with HttpProxy(indexed_catalog) as proxy:
            results = reindex.search("products", sort=BY_PRICE, per_page=20, es_url=proxy.url)
            pks, pages = walk(results, keep_alive="1m")
            assert pks == ordered_by_price(es) and pages == 3
            assert [method for method, _, _ in requests_to(proxy, "/_search/point_in_time")] == ["POST", "DELETE"]
            bodies = [json.loads(body) for method, path, body in proxy.requests if path.split("?")[0] == "/_search"]
            assert len(bodies) == 3 and all("pit" in body for body in bodies)

    def test_elasticsearch_pages_use_its_own_endpoints_and_tiebreaker(self, indexed_catalog, es):
        with ElasticsearchProxy(indexed_catalog) as proxy:
            results = reindex.search("products", sort=BY_PRICE, per_page=20, es_url=proxy.url)
            pks, pages = walk(results, keep_alive="1m")
            assert pks == ordered_by_price(es) and pages == 3
            assert [method for method, _, _ in requests_to(proxy, "/_pit")] == ["POST", "DELETE"]
            first = json.loads(next(body for method, path, body in proxy.requests if path.startswith("/_search")))
            assert first["sort"] == [{"price": "asc"}, {"_shard_doc": "asc"}]

    def test_a_closed_point_in_time_expires_its_cursor(self, indexed_catalog, es):
        results = reindex.search("products", sort=BY_PRICE, per_page=10, es_url=indexed_catalog)
        first = results.after(keep_alive="1m")
        pit = Cursor.decode(first.next_cursor, fingerprint(results.body)).pit
        headers = {"accept": "application/json", "content-type": "application/json"}
        es.perform_request("DELETE", "/_search/point_in_time", headers=headers, body={"pit_id": [pit]})  # as it expires
        with pytest.raises(reindex.CursorExpired):
            results.after(first.next_cursor)
