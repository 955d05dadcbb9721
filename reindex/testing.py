"""pytest fixtures for testing a site's search: a local test server, ``REINDEX`` pointed at it, aliases rebuilt.

Load the plugin once (``pytest -p reindex.testing``, ``addopts = -p reindex.testing`` in
your pytest settings, or ``pytest_plugins = ["reindex.testing"]`` in the top-level
``conftest.py``), then::

    def test_the_search_page_finds_a_kettle(client, search_indexes, db):
        Product.objects.create(name="Copper Kettle", price="35.00", category=kitchen)
        search_indexes("products")  # rebuilt from this test's rows; deleted after the test
        response = client.get("/search/", {"q": "kettle"})
        assert "Copper Kettle" in response.content.decode()

``search_server`` (one per test session) runs ``python -m reindex.testserver``, an
in-memory OpenSearch-compatible server (the ``osmem-server`` package:
``pip install osmem-server``). Set ``$REINDEX_TEST_SERVER_URL`` to use another,
throwaway, server instead. The rebuild reads the test's database: the test needs
database access (``db``, ``transactional_db`` or ``@pytest.mark.django_db``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reindex.api import connect, load_config
from reindex.api import rebuild as rebuild_aliases
from reindex.server.indexes import owned_indexes

#: A server of your own (throwaway: the fixtures delete what they build there) instead of a local one.
ENV_SERVER_URL = "REINDEX_TEST_SERVER_URL"


@pytest.fixture(scope="session")
def search_server() -> Iterator[str]:
    """The URL of a search server for the test session: a local ``python -m reindex.testserver``, stopped after."""
    given = os.environ.get(ENV_SERVER_URL)
    if given:
        yield given
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "reindex.testserver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        process.kill()
        raise RuntimeError(f"python -m reindex.testserver did not start (exit {process.wait()})")
    try:
        yield url
    finally:
        process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def search_settings(search_server: str) -> Iterator[str]:
    """``settings.REINDEX["HOSTS"]`` (and ``$REINDEX_ES_URL``) pointed at ``search_server`` for one test."""
    from django.conf import settings
    from django.test import override_settings

    given = dict(getattr(settings, "REINDEX", None) or {})
    saved = os.environ.get("REINDEX_ES_URL")
    os.environ["REINDEX_ES_URL"] = search_server  # the environment wins over settings: point it here too
    try:
        with override_settings(REINDEX={**given, "HOSTS": [search_server]}):
            yield search_server
    finally:
        if saved is None:
            os.environ.pop("REINDEX_ES_URL", None)
        else:
            os.environ["REINDEX_ES_URL"] = saved


@pytest.fixture
def search_indexes(search_settings: str) -> Iterator[Callable[..., list[Any]]]:
    """Rebuild the named aliases from the test's rows (``search_indexes("products")``); delete them after."""
    built: list[str] = []

    def rebuild(*aliases: str, **options: Any) -> list[Any]:
        results = rebuild_aliases(*aliases, **options)
        built.extend(result.alias for result in results)
        return results

    yield rebuild
    if built:
        delete_indexes(connect(load_config()), built)


def delete_indexes(client: Any, aliases: list[str]) -> None:
    """Delete every index ``reindex`` built for ``aliases``, and the locks and watermarks it kept."""
    for alias in set(aliases):
        for info in owned_indexes(client, alias, with_counts=False):
            if info.owned or info.live:
                client.options(ignore_status=404).indices.delete(index=info.name)
    client.options(ignore_status=404).indices.delete(index=load_config().lock_index)
