"""A busy server answers 429 now and then: to any one request a run makes, the run rides it out.

Each kind of request two rebuilds make (the server's identity, documents, range records
and their deletion, the lock, the index's settings and marker, the swap, the
watermark, the old index dropped...) is answered 429 once in turn, a bulk request with
every item rejected, as a busy cluster answers at 3 a.m.: the rebuilds swap all the
same, with every row. Another test checks that the list names every request they make.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from reindex.server import indexes
from reindex.server.locking import read_holder
from tests.httpproxy import BusyProxy, HttpProxy, bulk_index

ROWS = 40


def bulk_into(prefix: str, first_id: str = "") -> Any:
    """A bulk request whose first action writes to an index named ``prefix...`` (and an id ``first_id...``)."""

    def kind(method: str, path: str, body: bytes) -> bool:
        if not path.endswith("/_bulk") or not bulk_index(body).startswith(prefix):
            return False
        header = json.loads(body.split(b"\n", 1)[0])
        return str(next(iter(header.values())).get("_id", "")).startswith(first_id)

    return kind


def request(method: str, pattern: str) -> Any:
    """A request of ``method`` whose path starts with ``pattern`` (``*`` stands for an index's timestamp)."""
    head, _, tail = pattern.partition("*")

    def kind(seen_method: str, path: str, body: bytes) -> bool:
        if seen_method != method or not path.startswith(head):
            return False
        return not tail or (tail in path[len(head) :])

    return kind


def exactly(method: str, path: str) -> Any:
    """A request of ``method`` to ``path`` itself."""
    return lambda seen_method, seen_path, body: (seen_method, seen_path) == (method, path)


KINDS = {
    "server identified": exactly("GET", "/"),
    "documents": bulk_into("products-"),
    "range records": bulk_into("reindex-locks", "build:"),
    "build header": request("PUT", "/reindex-locks/_doc/build:"),
    "lock taken": request("PUT", "/reindex-locks/_create/products"),
    "lock released": request("DELETE", "/reindex-locks/_doc/products"),
    "lock index checked": request("HEAD", "/reindex-locks"),
    "index created": request("PUT", "/products-"),
    "settings restored": request("PUT", "/products-*/_settings"),
    "refresh": request("POST", "/products-*/_refresh"),
    "count": request("POST", "/products-*/_count"),
    "alias swapped": request("POST", "/_aliases"),
    "marked live": request("PUT", "/products-*/_mapping"),
    "watermark": request("PUT", "/reindex-locks/_doc/products:watermark"),
    "ids swept": request("POST", "/products-*/_search"),
    "ids scrolled": request("POST", "/_search/scroll"),
    "scroll cleared": request("DELETE", "/_search/scroll"),
    "lock index created": exactly("PUT", "/reindex-locks"),
    "lock renewed": request("PUT", "/reindex-locks/_doc/products"),
    "records read": request("GET", "/reindex-locks/_doc/"),
    "records read together": request("POST", "/reindex-locks/_mget"),
    "build record exists": request("HEAD", "/reindex-locks/_doc/build:"),
    "build records forgotten": request("DELETE", "/reindex-locks/_doc/build:"),
    "queue records forgotten": request("DELETE", "/reindex-locks/_doc/queue:"),
    "alias read": request("GET", "/_alias/products"),
    "alias exists": request("HEAD", "/_alias/products"),
    "name taken": exactly("HEAD", "/products"),
    "indexes listed": request("GET", "/products-"),
    "live count": exactly("POST", "/products/_count"),
    "old index dropped": request("DELETE", "/products-"),
}


def rebuild_twice(reindex: Any, url: str) -> list[Any]:
    """A first rebuild (lock index, alias created) and a second one (old index dropped, old records forgotten)."""
    return [reindex("rebuild", "products", "--keep", "0", "--retry-backoff", "0.05", url=url) for _ in range(2)]


def test_the_kinds_name_every_request_two_rebuilds_make(catalog, es_url, reindex):
    catalog(products=ROWS)
    with HttpProxy(es_url) as proxy:
        runs = rebuild_twice(reindex, proxy.url)

    assert [run.exit_code for run in runs] == [0, 0]
    seen = {(method, unquote(urlsplit(path).path), body) for method, path, body in proxy.requests}
    unnamed = sorted({(m, p) for m, p, body in seen if not any(kind(m, p, body) for kind in KINDS.values())})
    assert unnamed == [], "requests no kind names: add them to KINDS"


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_rebuild_rides_out_a_429_on_any_one_kind_of_request(catalog, es, es_url, reindex, kind):
    catalog(products=ROWS)
    with BusyProxy(es_url, KINDS[kind]) as proxy:
        runs = rebuild_twice(reindex, proxy.url)

    assert proxy.busy is not None, f"no {kind} request was made"
    for run in runs:
        assert run.exit_code == 0, run.stderr
        assert run.stdout.startswith(f"products: {ROWS} indexed, 0 failed")
    [live] = indexes.alias_targets(es, "products")
    assert es.count(index="products")["count"] == ROWS
    assert read_holder(es, "products") is None
    assert sorted(dict(es.indices.get(index="products-*"))) == [live]


@pytest.mark.parametrize("command", [["update", "--since", "1h"], ["sweep"], ["drain"], ["status"]])
def test_every_command_rides_out_a_429_to_its_first_request(catalog, es, es_url, reindex, command):
    """The request that asks the server who it is, before anything else, is retried as the others are."""
    from catalog.models import Product

    catalog(products=ROWS)
    assert reindex("rebuild", "products").exit_code == 0
    Product.objects.order_by("pk").first().save()  # for update and drain to send

    with BusyProxy(es_url, KINDS["server identified"]) as proxy:
        run = reindex(command[0], "products", *command[1:], url=proxy.url)

    assert proxy.busy == ("GET", "/")
    assert run.exit_code == 0, run.stderr
    assert "products: " in run.stdout
