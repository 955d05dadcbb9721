"""A site that survives its search server: down, frozen, failing or rejecting a query, the view gets one clean error.

Server faults through the loopback proxies (tests/faultproxy.py, tests/httpproxy.py).
No clock is read: that a search gives up after ``SEARCH_TIMEOUT`` and not the client's
30 s default is shown by the timeout the request was sent with (the HTTP library names
it in its error), and "at once" by the proxy having served the fault once (no retry).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

import reindex
from tests.conftest import ROOT, subprocess_env
from tests.faultproxy import FaultProxy
from tests.httpproxy import HttpProxy

TIMEOUT = 0.5


def refused_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raised(read) -> BaseException:  # type: ignore[no-untyped-def]
    with pytest.raises(reindex.ReindexError) as caught:
        read()
    return caught.value


def timeouts(error: BaseException) -> list[str]:
    """The read timeouts the HTTP library names in the causes of ``error`` (``["0.5"]``): the one sent with."""
    found, cause = [], error.__cause__
    while cause is not None:
        found += re.findall(r"read timeout=([0-9.]+)", str(cause))
        cause = cause.__cause__
    return found


class TestSearchUnavailable:
    def test_a_server_that_is_down_fails_the_search_not_the_import_or_the_call(self, db):
        results = reindex.search("products", {"match_all": {}}, es_url=f"http://127.0.0.1:{refused_port()}")
        error = raised(lambda: results[:20])
        assert isinstance(error, reindex.SearchUnavailable)
        assert str(error).startswith("search is unavailable: ") and "ConnectionError" in str(error)

    def test_a_server_that_cuts_the_connection_is_unavailable_at_once(self, indexed_catalog):
        with FaultProxy(indexed_catalog) as proxy:
            proxy.fail("refuse", seconds=30)
            error = raised(lambda: reindex.search("products", es_url=proxy.url)[:5])
        assert isinstance(error, reindex.SearchUnavailable) and str(error).startswith("search is unavailable: ")
        assert proxy.faults_served == 1  # one connection: not retried

    def test_a_frozen_server_fails_after_the_search_timeout(self, indexed_catalog):
        with FaultProxy(indexed_catalog) as proxy:
            proxy.fail("freeze", seconds=30)
            results = reindex.search("products", es_url=proxy.url, search_timeout=TIMEOUT)
            error = raised(results.count)
            proxy.fail("freeze", seconds=0)
        assert isinstance(error, reindex.SearchUnavailable) and "Timeout" in str(error)
        assert timeouts(error) == [str(TIMEOUT)]  # the search timeout, not the client's 30 s
        assert proxy.faults_served == 1  # no retry: a person is waiting

    def test_the_timeout_is_a_setting_resolved_with_the_others(self, indexed_catalog, settings):
        settings.REINDEX = {**settings.REINDEX, "SEARCH_TIMEOUT": TIMEOUT}
        with FaultProxy(indexed_catalog) as proxy:
            proxy.fail("freeze", seconds=30)
            error = raised(lambda: list(reindex.search("products", es_url=proxy.url)))
            proxy.fail("freeze", seconds=0)
        assert isinstance(error, reindex.SearchUnavailable) and timeouts(error) == [str(TIMEOUT)]

    @pytest.mark.parametrize("status", ["503", "429"])
    def test_a_server_answering_an_error_is_unavailable_at_once(self, indexed_catalog, status):
        with FaultProxy(indexed_catalog) as proxy:
            proxy.fail(status, seconds=30)
            error = raised(lambda: reindex.search("products", es_url=proxy.url)[:5])
        assert isinstance(error, reindex.SearchUnavailable)
        assert f"answered {status}" in str(error) and proxy.faults_served == 1  # not retried with backoff

    def test_an_alias_not_built_yet_is_unavailable(self, es_url, db):
        with pytest.raises(reindex.SearchUnavailable, match="404"):
            reindex.search("products", es_url=es_url).count()

    def test_a_500_after_the_first_page_fails_the_next(self, indexed_catalog):
        with HttpProxy(indexed_catalog) as proxy:
            results = reindex.search("products", sort=["price"], per_page=10, es_url=proxy.url)
            first = results.after()
            proxy.answer_with(500)
            with pytest.raises(reindex.SearchUnavailable, match="500"):
                results.after(first.next_cursor)


class TestBadQuery:
    def test_a_query_the_server_cannot_parse_is_a_bad_query_with_its_reason(self, indexed_catalog):
        results = reindex.search("products", {"query_string": {"query": "name:(("}}, es_url=indexed_catalog)
        with pytest.raises(reindex.BadQuery, match="Cannot parse 'name:\\(\\('"):
            results.count()

    def test_a_query_that_is_not_a_dict_is_refused_before_anything_is_sent(self, db):
        with pytest.raises(reindex.BadQuery, match="not str"):
            reindex.search("products", "kettle", es_url=f"http://127.0.0.1:{refused_port()}")


def test_a_definition_with_its_own_ids_and_no_way_back_is_a_clear_error(db):
    from tests.definitions import SkuIdIndex

    with pytest.raises(reindex.ConfigurationError, match="pk_from_id"):
        reindex.search(SkuIdIndex, es_url=f"http://127.0.0.1:{refused_port()}")


def test_importing_a_module_that_searches_connects_to_nothing(tmp_path):
    """A views module that builds its search at import time (a common first draft) still sends nothing."""
    (tmp_path / "searchviews.py").write_text(
        "import reindex\nRESULTS = reindex.search('products', {'match_all': {}})\n"
    )
    code = "import django; django.setup(); import searchviews; print('imported')"
    with HttpProxy("http://127.0.0.1:9") as proxy:
        env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings", REINDEX_ES_URL=proxy.url)
        env["PYTHONPATH"] += f":{tmp_path}"
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "imported" and proxy.requests == []
