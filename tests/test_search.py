"""The search side (issue 20): a user's query becomes a full page of rows, in hit order, through Django's pagination.

Against osmem-server over HTTP and the real database (SQLite, or PostgreSQL with
``REINDEX_TEST_DB=postgres``); requests are counted by a recording proxy, SQL by Django.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

import reindex
from tests.httpproxy import HttpProxy

BY_PRICE = [{"price": "asc"}]


def searches(proxy: HttpProxy) -> list[dict[str, Any]]:
    """The bodies of the search requests that reached the server, in order."""
    return [json.loads(body) for method, path, body in proxy.requests if path.split("?")[0].endswith("/_search")]


def ordered_by_price(es: Any, size: int = 100) -> list[int]:
    """The primary keys of the indexed products, cheapest first, as the server orders them."""
    hits = es.search(index="products", size=size, sort=[{"price": "asc"}, {"_id": "asc"}], source=False)
    return [int(hit["_id"]) for hit in hits["hits"]["hits"]]


@pytest.fixture
def proxy(indexed_catalog: str) -> Any:
    """A recording proxy in front of the test's server, on which the catalog's 50 products are indexed."""
    with HttpProxy(indexed_catalog) as recording:
        yield recording


class TestNothingIsSentUntilTheRowsAreRead:
    def test_a_result_is_lazy_and_a_page_is_one_search_and_one_query_for_its_rows(self, proxy, es):
        results = reindex.search("products", {"match_all": {}}, sort=BY_PRICE, es_url=proxy.url)
        assert proxy.requests == []
        with CaptureQueriesContext(connection) as queries:
            rows = results[:10]
        assert [row.pk for row in rows] == ordered_by_price(es)[:10]
        assert len(searches(proxy)) == 1
        # The rows, then the sellers the definition's queryset prefetches: nothing per row.
        assert len(queries.captured_queries) == 2
        assert "category" in queries.captured_queries[0]["sql"]  # its select_related applies

    def test_each_row_carries_its_hit(self, proxy):
        results = reindex.search(
            "products",
            {"match": {"name": "teapot"}},
            highlight={"fields": {"name": {}}},
            es_url=proxy.url,
        )
        rows = list(results)
        assert rows and all("teapot" in row.name.lower() for row in rows)
        hit = rows[0].search_hit
        assert hit.id == str(rows[0].pk)
        assert hit.index.startswith("products-")
        assert hit.score and hit.score > 0
        assert "<em>" in hit.highlight["name"][0]

    def test_count_and_aggregations_come_with_the_first_page_in_one_request(self, proxy, es):
        aggs = {"stock": {"terms": {"field": "in_stock"}}}
        results = reindex.search("products", aggs=aggs, es_url=proxy.url)
        assert results.count() == 50
        assert sum(b["doc_count"] for b in results.aggregations["stock"]["buckets"]) == 50
        assert len(list(results)) == 20
        assert len(searches(proxy)) == 1
        assert searches(proxy)[0]["track_total_hits"] == 10_000

    def test_a_filter_narrows_without_scoring(self, proxy):
        from catalog.models import Product

        results = reindex.search(
            "products", {"match_all": {}}, filter={"term": {"in_stock": True}}, per_page=100, es_url=proxy.url
        )
        assert {row.pk for row in results} == set(Product.objects.filter(in_stock=True).values_list("pk", flat=True))

    def test_a_descending_sort_is_written_as_in_order_by(self, proxy, es):
        results = reindex.search("products", sort=["-price"], es_url=proxy.url)
        prices = [row.price for row in results]
        assert prices == sorted(prices, reverse=True)

    def test_an_elasticsearch_dsl_query_and_search_are_taken_as_they_are(self, proxy, es):
        dsl = pytest.importorskip("elasticsearch.dsl")
        by_query = reindex.search("products", dsl.Q("match", name="teapot"), es_url=proxy.url)
        whole = dsl.Search().query("match", name="teapot").sort("price")[:3]
        by_search = reindex.search("products", whole, es_url=proxy.url)
        assert {row.pk for row in by_query} == {row.pk for row in by_search}
        assert [row.price for row in by_search] == sorted(row.price for row in by_search)
        last = searches(proxy)[-1]
        assert last["sort"] == ["price"] and last["size"] == 20  # the Search's own slice is not the page

    def test_a_queryset_of_the_views_own_replaces_the_definitions(self, proxy):
        from catalog.models import Product

        results = reindex.search("products", queryset=Product.objects.only("name"), es_url=proxy.url)
        with CaptureQueriesContext(connection) as queries:
            rows = results[:5]
        assert len(rows) == 5 and len(queries.captured_queries) == 1


class TestPagesStayFullWhenRowsAreGone:
    def test_hits_whose_rows_were_deleted_are_dropped_and_the_page_topped_up(self, proxy, es):
        from catalog.models import Product

        order = ordered_by_price(es)
        gone = [order[1], order[4], order[7]]
        Product.objects.filter(pk__in=gone[:2]).delete()
        Product.objects.filter(pk=gone[2]).update(is_active=False)  # withdrawn: the queryset leaves it out
        results = reindex.search("products", sort=BY_PRICE, es_url=proxy.url)
        rows = results[:10]
        assert [row.pk for row in rows] == [pk for pk in order if pk not in gone][:10]
        assert results.dropped == 3
        assert sorted(int(hit.id) for hit in results.dropped_hits) == sorted(gone)
        # The first request asked for the slice, the top-up for what was missing after it.
        first, top_up = searches(proxy)
        assert (first["from"], first["size"]) == (0, 10)
        assert top_up["from"] == 10 and top_up["size"] >= 3

    def test_the_dropped_rows_are_queued_so_the_next_drain_removes_their_documents(self, proxy, es):
        from catalog.models import Product

        from reindex.models import QueueEntry

        order = ordered_by_price(es)
        Product.objects.filter(pk__in=order[:2]).delete()
        QueueEntry.objects.all().delete()  # as if the deletes had not been captured (a raw SQL delete)
        reindex.search("products", sort=BY_PRICE, es_url=proxy.url)[:5]
        assert sorted(QueueEntry.objects.values_list("object_id", flat=True)) == sorted(str(pk) for pk in order[:2])
        reindex.drain("products", es_url=proxy.url)
        es.indices.refresh(index="products")
        assert ordered_by_price(es)[:3] == order[2:5]

    def test_healing_can_be_turned_off(self, proxy, es, settings):
        from catalog.models import Product

        from reindex.models import QueueEntry

        order = ordered_by_price(es)
        Product.objects.filter(pk=order[0]).delete()
        QueueEntry.objects.all().delete()
        settings.REINDEX = {**settings.REINDEX, "SEARCH_HEAL": False}
        results = reindex.search("products", sort=BY_PRICE, es_url=proxy.url)
        assert [row.pk for row in results[:3]] == order[1:4]
        assert results.dropped == 1 and not QueueEntry.objects.exists()

    def test_a_page_mostly_stale_is_topped_up_in_growing_steps_and_served_as_it_is_after_four(
        self, catalog, es_url, es
    ):
        from catalog.models import Product

        catalog(products=260)
        reindex.rebuild("products", es_url=es_url)
        order = ordered_by_price(es, size=300)
        Product.objects.filter(pk__in=order[:40]).delete()  # the first 40 hits are stale
        with HttpProxy(es_url) as proxy:
            results = reindex.search("products", sort=BY_PRICE, per_page=5, es_url=proxy.url)
            assert [row.pk for row in results[:5]] == order[40:45]
            assert [body["size"] for body in searches(proxy)] == [5, 50]  # the second scaled by what was dropped
        Product.objects.filter(pk__in=order[40:250]).delete()  # now the first 250
        results = reindex.search("products", sort=BY_PRICE, per_page=5, es_url=es_url)
        assert results[:5] == []  # after 4 top-ups (205 hits read) the page is served as it is
        assert results.searches == 5 and results.dropped == 205

    def test_the_last_page_holds_what_is_left(self, proxy, es):
        from catalog.models import Product

        order = ordered_by_price(es)
        Product.objects.filter(pk__in=order[45:48]).delete()
        results = reindex.search("products", sort=BY_PRICE, es_url=proxy.url)
        assert [row.pk for row in results[40:50]] == order[40:45] + order[48:50]
        assert len(searches(proxy)) == 1  # the server said there was nothing after


def test_a_values_definition_gives_dicts_carrying_their_hit_and_queues_nothing(catalog, es_url):
    from catalog.models import Product

    from reindex.models import QueueEntry
    from tests.definitions import TinyIndex

    catalog(products=12)
    reindex.rebuild(TinyIndex, es_url=es_url)
    QueueEntry.objects.all().delete()
    gone = Product.objects.order_by("pk").first()
    gone.delete()
    QueueEntry.objects.all().delete()
    rows = reindex.search(TinyIndex, sort=["name"], per_page=20, es_url=es_url)[:20]
    assert len(rows) == 11 and all(row["search_hit"].id == str(row["pk"]) for row in rows)
    assert not QueueEntry.objects.exists()  # TinyIndex watches nothing: its changes do not go through the queue


def test_a_definition_with_ids_of_its_own_maps_its_hits_back_through_pk_from_id(catalog, es_url, es):
    """``get_id()`` overridden with ``pk_from_id()``/``id_from_pk()``: rows in hit order, stale ids healed by pk."""
    from catalog.models import Product

    from reindex.models import QueueEntry
    from tests.definitions import PrefixedIdIndex

    catalog(products=30)
    reindex.rebuild(PrefixedIdIndex, es_url=es_url)
    ids = [
        hit["_id"]
        for hit in es.search(index="prefixed", size=100, sort=[{"price": "asc"}, {"_id": "asc"}])["hits"]["hits"]
    ]
    order = [int(doc_id.removeprefix("product-")) for doc_id in ids]
    Product.objects.filter(pk__in=order[:2]).delete()
    QueueEntry.objects.all().delete()
    results = reindex.search(PrefixedIdIndex, sort=BY_PRICE, per_page=10, es_url=es_url)
    rows = results[:10]
    assert [row.pk for row in rows] == order[2:12]
    assert [row.search_hit.id for row in rows] == ids[2:12]
    assert sorted(QueueEntry.objects.filter(alias="prefixed").values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in order[:2]
    )
    reindex.drain(PrefixedIdIndex, es_url=es_url)  # deletes the stale documents by id_from_pk()
    es.indices.refresh(index="prefixed")
    assert not any(es.exists(index="prefixed", id=doc_id) for doc_id in ids[:2])


class TestDjangosPagination:
    def test_paginator_reads_each_page_with_one_search_when_told_the_page(self, proxy, es):
        order = ordered_by_price(es)
        for number in (1, 2, 3):
            proxy.requests.clear()
            results = reindex.search("products", sort=BY_PRICE, page=str(number), es_url=proxy.url)
            with CaptureQueriesContext(connection) as queries:
                page = Paginator(results, 20).page(number)
                assert [row.pk for row in page] == order[(number - 1) * 20 : number * 20]
            assert page.paginator.num_pages == 3
            assert len(searches(proxy)) == 1
            assert len(queries.captured_queries) == 2  # the page's rows, and the sellers they prefetch

    def test_paginator_works_unchanged_without_the_hint(self, proxy, es):
        order = ordered_by_price(es)
        page = Paginator(reindex.search("products", sort=BY_PRICE, es_url=proxy.url), 20).get_page("2")
        assert [row.pk for row in page] == order[20:40]
        assert page.has_next() and page.has_previous()

    def test_a_list_view_paginates_the_results(self, proxy, es, rf):
        from django.views.generic import ListView

        class SearchView(ListView):
            paginate_by = 20
            template_name = "unused.html"

            def get_queryset(self) -> Any:
                page = self.request.GET.get("page")
                return reindex.search("products", sort=BY_PRICE, page=page, es_url=proxy.url)

        view = SearchView()
        view.setup(rf.get("/search/", {"page": "3"}))
        view.object_list = view.get_queryset()
        context = view.get_context_data()
        assert [row.pk for row in context["product_list"]] == ordered_by_price(es)[40:50]
        assert context["paginator"].count == 50 and context["page_obj"].number == 3
        assert len(searches(proxy)) == 1

    def test_count_is_bounded_and_says_so(self, proxy, settings):
        settings.REINDEX = {**settings.REINDEX, "SEARCH_TOTAL_BOUND": 30}
        results = reindex.search("products", es_url=proxy.url)
        assert results.count() == 30 and not results.total_is_exact
