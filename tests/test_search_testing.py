"""``reindex.testing``: a site's own tests get a server, settings pointed at it, and aliases built and removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import reindex
from reindex.testing import delete_indexes
from tests.conftest import ROOT

#: A site's test as docs/search.md shows it, run by a pytest of its own with the plugin loaded by pytest.ini.
SITE_TEST = """
import reindex
from catalog.models import Category, Product


def test_the_search_finds_a_kettle(search_indexes, db):
    kitchen = Category.objects.create(name="Kitchen", slug="kitchen")
    Product.objects.create(name="Copper Kettle", price="35.00", category=kitchen)
    Product.objects.create(name="Oak Board", price="20.00", category=kitchen)
    search_indexes("products")
    assert [p.name for p in reindex.search("products", {"match": {"name": "kettle"}})] == ["Copper Kettle"]
"""

PYTEST_INI = """
[pytest]
DJANGO_SETTINGS_MODULE = tests.settings
addopts = -p reindex.testing -p no:cacheprovider
"""


def test_a_test_searches_what_it_built_and_delete_indexes_removes_it(search_indexes, search_server, catalog, settings):
    catalog(products=7)
    [result] = search_indexes("products")
    assert settings.REINDEX["HOSTS"] == [search_server] and os.environ["REINDEX_ES_URL"] == search_server
    assert result.indexed == 7 and reindex.search("products").count() == 7  # no es_url: the settings say where
    es = reindex.connect()
    delete_indexes(es, ["products"])  # what the fixture does after the test
    assert es.indices.get(index="products*", expand_wildcards="all", ignore_unavailable=True) == {}
    assert not es.indices.exists(index=reindex.load_config().lock_index)


def test_a_sites_own_test_run_builds_its_alias_and_the_plugin_removes_it_after(tmp_path: Path, es_url, es):
    """A whole pytest run of a site's test, on this test's server ($REINDEX_TEST_SERVER_URL): the teardown itself."""
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    (tmp_path / "test_site_search.py").write_text(SITE_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS", "REINDEX_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "example")]),
        REINDEX_TEST_SERVER_URL=es_url,
        REINDEX_TEST_DB="sqlite",  # the plugin's teardown is the same on any database
    )
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", str(tmp_path)]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert es.indices.get(index="products*", expand_wildcards="all", ignore_unavailable=True) == {}
    assert not es.indices.exists(index=reindex.load_config().lock_index)
