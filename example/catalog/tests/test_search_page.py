"""The shop's search page, tested as a site tests its own: with ``reindex.testing``'s fixtures.

``search_indexes("products")`` rebuilds the alias on a local test server from the
test's rows and deletes it afterwards; the page is opened through Django's test client.
"""

from __future__ import annotations

import re

import pytest

from catalog.models import Category, Product


@pytest.fixture
def kitchen(db) -> Category:  # type: ignore[no-untyped-def]
    return Category.objects.create(name="Kitchen", slug="kitchen")


def listed(html: str) -> list[str]:
    """The product names on a result page, in order, highlighting taken off."""
    items = re.findall(r"<li>\s*(.*?)\s*·", html, flags=re.S)
    return [re.sub(r"</?em>", "", item) for item in items]


def test_a_shopper_finds_a_kettle(client, search_indexes, kitchen):
    Product.objects.create(name="Copper Kettle", price="35.00", category=kitchen)
    Product.objects.create(name="Oak Chopping Board", price="20.00", category=kitchen)
    search_indexes("products")
    response = client.get("/search/", {"q": "kettle"})
    html = response.content.decode()
    assert response.status_code == 200
    assert listed(html) == ["Copper Kettle"]
    assert "<em>Kettle</em>" in html and "1 product for" in html


def test_pages_of_twenty_with_links_between_them(client, search_indexes, kitchen):
    Product.objects.bulk_create(Product(name=f"Teapot no. {n}", price=n + 1, category=kitchen) for n in range(45))
    search_indexes("products")
    first = client.get("/search/", {"q": "teapot"}).content.decode()
    third = client.get("/search/", {"q": "teapot", "page": 3}).content.decode()
    assert len(listed(first)) == 20 and "45 products for" in first
    assert "page 1 of 3" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert len(listed(third)) == 5 and 'rel="next"' not in third
    assert set(listed(first)).isdisjoint(listed(third))


def test_a_product_withdrawn_since_the_rebuild_leaves_the_page_at_once(client, search_indexes, kitchen):
    kettle = Product.objects.create(name="Copper Kettle", price="35.00", category=kitchen)
    Product.objects.create(name="Steel Kettle", price="25.00", category=kitchen)
    search_indexes("products")
    kettle.is_active = False
    kettle.save()
    assert listed(client.get("/search/", {"q": "kettle"}).content.decode()) == ["Steel Kettle"]


def test_with_the_search_server_down_the_page_says_so(client, db, settings):
    settings.REINDEX = {**settings.REINDEX, "HOSTS": ["http://127.0.0.1:9"]}
    response = client.get("/search/", {"q": "kettle"}, REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 503
    assert "Search is unavailable" in response.content.decode()
