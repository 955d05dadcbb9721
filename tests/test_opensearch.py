"""A site whose search server is OpenSearch: no ``X-Elastic-Product`` header, OpenSearch's own ``GET /``.

Every command runs against osmem-server behind ``OpenSearchProxy``, which answers as
OpenSearch 2.11.0 does: the official client's product check would refuse it.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reindex.config import Config
from reindex.server import indexes
from reindex.server.connection import Connection
from tests.httpproxy import OpenSearchProxy


@pytest.fixture
def opensearch(es_url: str) -> Iterator[OpenSearchProxy]:
    with OpenSearchProxy(es_url, version="2.11.0") as proxy:
        yield proxy


@pytest.fixture
def run(reindex: Any, opensearch: OpenSearchProxy) -> Any:
    """The CLI, talking to the server only through the OpenSearch-like proxy."""
    return functools.partial(reindex, url=opensearch.url)


def live(es: Any) -> str:
    [index] = indexes.alias_targets(es, "products")
    return index


def test_the_proxy_answers_as_opensearch_which_the_stock_client_refuses(opensearch):
    from elasticsearch import Elasticsearch, UnsupportedProductError

    with pytest.raises(UnsupportedProductError):
        Elasticsearch(opensearch.url).info()
    assert opensearch.stripped > 0


def test_the_tools_client_talks_to_it(opensearch):
    client = Connection(Config(hosts=(opensearch.url,))).client()

    info = client.info()
    client.indices.create(index="products-1")

    assert (info["version"]["distribution"], info["version"]["number"]) == ("opensearch", "2.11.0")
    assert client.options(ignore_status=404).indices.exists(index="products-1")


def test_rebuild_then_status_and_diff(catalog, run, es, opensearch):
    catalog(products=20)

    built = run("rebuild", "products")
    status = run("status", "products")
    [report] = json.loads(run("status", "products", "--json").stdout)
    diff = run("diff", "products")

    assert built.exit_code == 0, built.stderr
    assert es.count(index="products")["count"] == 20
    assert status.exit_code == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"server: opensearch 2.11.0 at {opensearch.url}"
    assert f"products: live {live(es)} (20 documents)" in status.stdout
    assert report["server"] == {"distribution": "opensearch", "version": "2.11.0", "url": opensearch.url}
    assert report["alias"] == "products" and report["count"] == 20
    assert (diff.exit_code, diff.stdout.strip()) == (0, f"products: no differences ({live(es)})"), diff.stderr
    assert opensearch.stripped > 0


def test_migrate(catalog, run, es, monkeypatch):
    from catalog.indexes import ProductIndex

    catalog(products=5)
    assert run("rebuild", "products").exit_code == 0
    mappings = copy.deepcopy(ProductIndex.mappings)
    mappings["properties"]["rating"] = {"type": "float"}
    monkeypatch.setattr(ProductIndex, "mappings", mappings)

    migrated = run("migrate", "products")

    assert migrated.exit_code == 0, migrated.stderr
    assert "rating: added" in migrated.stdout
    assert run("diff", "products").exit_code == 0
    assert es.indices.get_mapping(index="products")[live(es)]["mappings"]["properties"]["rating"] == {"type": "float"}


def test_rollback_and_prune(catalog, run, es):
    catalog(products=6, seed=1)
    assert run("rebuild", "products", "--keep", "2").exit_code == 0
    first = live(es)
    for _ in range(2):
        assert run("rebuild", "products", "--keep", "2").exit_code == 0

    rolled = run("rollback", "products")
    pruned = run("prune", "products", "--keep", "0", "--json")

    assert rolled.exit_code == 0, rolled.stderr
    assert pruned.exit_code == 0, pruned.stderr
    assert first in json.loads(pruned.stdout)["dropped"]
    assert es.count(index="products")["count"] == 6


def test_rebuild_with_two_workers(catalog, run, es, transactional_db):
    catalog(products=120)

    built = run("rebuild", "products", "--workers", "2", "--batch-size", "20", "--json")

    assert built.exit_code == 0, built.stderr
    [report] = json.loads(built.stdout)
    assert (report["indexed"], report["failed"], report["swapped"]) == (120, 0, True)
    assert es.count(index="products")["count"] == 120


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def test_a_web_server_that_is_no_search_server_is_refused_with_one_line(db, reindex, tmp_path):
    (tmp_path / "index.html").write_text("<html>It works!</html>")
    handler = functools.partial(QuietFiles, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        run = reindex("status", "products", url=url)
    finally:
        server.shutdown()
        server.server_close()

    assert run.exit_code == 2
    assert run.stderr.startswith(f"reindex: error: the server at {url} is neither Elasticsearch nor OpenSearch")
    assert len(run.stderr.strip().splitlines()) == 1
