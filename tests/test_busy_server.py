"""A busy server answers 429 now and then: to any one request a run makes, the run rides it out.

Each kind of request a rebuild makes (documents, range records, the lock, the index's
settings and marker, the swap, the watermark) is answered 429 once in turn, a bulk
request with every item rejected, as a busy cluster answers at 3 a.m.: the rebuild
swaps all the same, with every row, and says it retried.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from reindex.server import indexes
from reindex.server.locking import read_holder
from tests.httpproxy import BusyProxy, bulk_index

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


KINDS = {
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
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_rebuild_rides_out_a_429_on_any_one_kind_of_request(catalog, es, es_url, reindex, kind):
    catalog(products=ROWS)
    with BusyProxy(es_url, KINDS[kind]) as proxy:
        run = reindex("rebuild", "products", "--retry-backoff", "0.05", url=proxy.url)

    assert proxy.busy is not None, f"no {kind} request was made"
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(f"products: {ROWS} indexed, 0 failed")
    [live] = indexes.alias_targets(es, "products")
    assert es.count(index="products")["count"] == ROWS
    assert read_holder(es, "products") is None
    assert sorted(dict(es.indices.get(index="products-*"))) == [live]
