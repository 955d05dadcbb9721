"""PostgreSQL triggers queue what no signal sees: raw SQL, ``queryset.update()``, links deleted in bulk.

Capture by signals is turned off in these tests (``QUEUE_CAPTURE = False``), so every
entry in the queue was written by a trigger, in the writing statement's transaction.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import reindex as api
from tests.helpers import execute, stored

SHOP = "tests.definitions.ShopIndex"


@pytest.fixture
def postgres(db: Any, settings: Any) -> None:
    """PostgreSQL only, with the signal handlers off: the triggers alone queue."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("triggers are PL/pgSQL: run with REINDEX_TEST_DB=postgres")
    settings.REINDEX = {**settings.REINDEX, "QUEUE_CAPTURE": False}


def queued(alias: str = "products") -> list[int]:
    from reindex.models import QueueEntry

    return sorted(int(pk) for pk in QueueEntry.objects.filter(alias=alias).values_list("object_id", flat=True))


@pytest.fixture
def triggered(postgres: None, indexed_catalog: str) -> str:
    """The demo catalog indexed, the products' triggers installed, the queue empty."""
    api.triggers_install("products")
    return indexed_catalog


def test_a_raw_sql_update_is_queued_and_drained(triggered, es):
    from catalog.models import Product

    product = Product.objects.order_by("pk").first()
    execute("UPDATE catalog_product SET name = %s WHERE id = %s", ("Renamed in SQL", product.pk))
    assert queued() == [product.pk]

    [result] = api.drain("products", es_url=triggered)

    assert (result.indexed, result.deleted) == (1, 0)
    assert stored(es, "products", product.pk)["name"] == "Renamed in SQL"
    assert queued() == []


def test_renaming_a_seller_with_queryset_update_queues_every_product_that_carries_it(triggered, es):
    from catalog.models import Seller

    seller = Seller.objects.order_by("pk").first()
    carrying = sorted(seller.products.values_list("pk", flat=True))
    assert carrying

    Seller.objects.filter(pk=seller.pk).update(name="Renamed in bulk")

    assert queued() == carrying
    api.drain("products", es_url=triggered)
    for pk in seller.products.filter(is_active=True).values_list("pk", flat=True):
        assert "Renamed in bulk" in [s["name"] for s in stored(es, "products", pk)["sellers"]]


def test_links_inserted_or_deleted_in_sql_queue_their_product(triggered):
    from catalog.models import Product, Seller

    product = Product.objects.order_by("pk").first()
    outsider = Seller.objects.exclude(products=product).first()

    execute("INSERT INTO catalog_product_sellers (product_id, seller_id) VALUES (%s, %s)", (product.pk, outsider.pk))
    assert queued() == [product.pk]

    execute("DELETE FROM reindex_queue")
    execute("DELETE FROM catalog_product_sellers WHERE product_id = %s", (product.pk,))
    assert queued() == [product.pk]


def test_deleting_a_seller_queues_its_products_though_django_deletes_the_links_first(triggered, es):
    from catalog.models import Seller

    seller = Seller.objects.order_by("pk").first()
    carrying = sorted(seller.products.values_list("pk", flat=True))

    seller.delete()

    assert queued() == carrying
    api.drain("products", es_url=triggered)
    for pk in carrying:
        document = stored(es, "products", pk)
        assert document is None or seller.name not in [s["name"] for s in document["sellers"]]


def test_a_deleted_product_is_queued_and_its_document_deleted(triggered, es):
    from catalog.models import Product

    product = Product.objects.filter(is_active=True).order_by("pk").first()
    execute("DELETE FROM catalog_product_sellers WHERE product_id = %s", (product.pk,))
    execute("DELETE FROM catalog_product WHERE id = %s", (product.pk,))

    [result] = api.drain("products", es_url=triggered)

    assert result.deleted == 1
    assert stored(es, "products", product.pk) is None


def test_moving_a_product_to_another_category_queues_both_categories(postgres, catalog):
    from catalog.models import Category, Product

    catalog(products=20)
    api.triggers_install("categories")
    product = Product.objects.order_by("pk").first()
    old = product.category_id
    new = Category.objects.exclude(pk=old).first().pk

    execute("UPDATE catalog_product SET category_id = %s WHERE id = %s", (new, product.pk))

    # The old category's count changed too: the BEFORE trigger found it while the row still pointed there.
    assert queued("categories") == sorted([old, new])


def test_a_rolled_back_statement_queues_nothing_and_a_paused_transaction_neither(triggered):
    from catalog.models import Product
    from django.db import transaction

    product = Product.objects.order_by("pk").first()
    with pytest.raises(RuntimeError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(name="Rolled back")
        raise RuntimeError("the request failed")
    assert queued() == []

    with transaction.atomic():
        execute("SET LOCAL reindex.paused = 'on'")
        Product.objects.filter(pk=product.pk).update(name="Imported, a rebuild follows")
    assert queued() == []


def test_a_change_to_an_entry_being_drained_keeps_it_queued(triggered):
    from catalog.models import Product

    from reindex.models import QueueEntry
    from reindex.queue import entries as changequeue

    product = Product.objects.order_by("pk").first()
    api.enqueue("products", [product.pk])
    claimed = changequeue.claim("products", 10, lease=60)

    Product.objects.filter(pk=product.pk).update(name="Changed while drained")

    assert QueueEntry.objects.get(alias="products").requeued
    changequeue.acknowledge(claimed.entries, claimed.token)
    assert queued() == [product.pk]  # back to pending: the drainer may have read the row before the change


def test_a_two_step_lookup_puts_triggers_on_every_table_of_its_path(postgres, catalog, settings):
    from catalog.models import Product, Seller

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.CategorySellersIndex"]}
    catalog(products=20)

    [status] = api.triggers_install("category_sellers")

    assert sorted(status.installed) == [
        "catalog_category",
        "catalog_product",
        "catalog_product_sellers",
        "catalog_seller",
    ]
    product = Product.objects.order_by("pk").first()
    outsider = Seller.objects.exclude(products__category=product.category_id).first()
    execute("INSERT INTO catalog_product_sellers (product_id, seller_id) VALUES (%s, %s)", (product.pk, outsider.pk))
    assert queued("category_sellers") == [product.category_id]

    execute("DELETE FROM reindex_queue")
    Seller.objects.filter(pk=outsider.pk).update(country="NZ")
    categories = sorted(set(Product.objects.filter(sellers=outsider).values_list("category_id", flat=True)))
    assert queued("category_sellers") == categories


def test_status_finds_triggers_missing_outdated_and_left_over_and_install_puts_them_right(postgres, settings, reindex):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": [SHOP]}

    run = reindex("triggers", "status", "shop")
    assert run.exit_code == 1
    assert run.stdout == (
        "shop: no triggers; missing on catalog_product, catalog_product_sellers, catalog_seller, catalog_category\n"
    )

    run = reindex("triggers", "install", "shop")
    assert run.exit_code == 0, run.stderr
    assert (
        run.stdout == "shop: triggers on catalog_product, catalog_product_sellers, catalog_seller, catalog_category\n"
    )
    assert reindex("triggers", "status", "shop").exit_code == 0

    # A deploy stops carrying sellers: their triggers would queue for nothing.
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.ShopWithoutSellersIndex"]}
    [status] = api.triggers_status("shop")
    assert (status.installed, status.extra) == (
        ["catalog_product", "catalog_category"],
        ["catalog_product_sellers", "catalog_seller"],
    )
    assert reindex("triggers", "status", "shop").exit_code == 1

    run = reindex("triggers", "install", "shop", "--json")
    [report] = json.loads(run.stdout)
    assert (report["installed"], report["extra"], report["complete"]) == (
        ["catalog_product", "catalog_category"],
        [],
        True,
    )


def test_a_trigger_function_edited_by_hand_is_outdated_until_installed_again(postgres, settings):
    from reindex.queue.triggers import installed

    settings.REINDEX = {**settings.REINDEX, "INDEXES": [SHOP]}
    api.triggers_install("shop")
    [function] = [name for name, about in installed("default").items() if about["table"] == "catalog_seller"]
    execute(f'CREATE OR REPLACE FUNCTION "{function}"() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$')
    about = {"alias": "shop", "table": "catalog_seller", "fingerprint": "edited"}
    execute(f'COMMENT ON FUNCTION "{function}"() IS %s', ("reindex trigger " + json.dumps(about),))

    [status] = api.triggers_status("shop")
    assert status.outdated == ["catalog_seller"]

    [status] = api.triggers_install("shop")
    assert status.complete and status.outdated == []


def test_a_function_in_watch_is_reported_as_not_followed(postgres, settings, reindex):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.ShopByFunctionIndex"]}

    run = reindex("triggers", "install", "shop")

    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        "shop: triggers on catalog_product, catalog_category; "
        "not followed by a trigger (queued by saves only): catalog.Seller: a function\n"
    )


def test_remove_drops_the_triggers_and_sql_queues_nothing_again(triggered, reindex):
    from catalog.models import Product

    run = reindex("triggers", "remove")

    assert (run.exit_code, run.stdout) == (0, "products: 4 table triggers dropped\n")
    Product.objects.update(name="Nobody queues this")
    assert queued() == []
    [status] = api.triggers_status("products")
    assert status.installed == [] and len(status.missing) == 4


def test_triggers_need_postgresql(db, reindex):
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL the triggers are installed")

    run = reindex("triggers", "install", "products")

    assert run.exit_code == 2
    assert (
        run.stderr
        == f"reindex: error: triggers need PostgreSQL; the queue's database 'default' is {connection.vendor}\n"
    )


def test_install_refuses_before_the_queue_table_exists(postgres, reindex):
    """A trigger writing into a missing table would make every write of the site fail."""
    execute("ALTER TABLE reindex_queue RENAME TO reindex_queue_elsewhere")

    run = reindex("triggers", "install", "products")

    assert run.exit_code == 2
    assert run.stderr == (
        "reindex: error: the queue's table reindex_queue is missing: run python manage.py migrate reindex first\n"
    )
    execute("ALTER TABLE reindex_queue_elsewhere RENAME TO reindex_queue")
    [status] = api.triggers_status("products")
    assert status.installed == []  # nothing was installed


def test_a_trigger_left_stale_by_a_migration_never_fails_the_sites_writes(triggered):
    from catalog.models import Seller

    seller = Seller.objects.order_by("pk").first()
    # A migration renamed a column the trigger's query reads, and triggers install was not run again.
    execute("ALTER TABLE catalog_product_sellers RENAME COLUMN product_id TO item_id")

    execute("UPDATE catalog_seller SET name = %s WHERE id = %s", ("Still writable", seller.pk))

    execute("ALTER TABLE catalog_product_sellers RENAME COLUMN item_id TO product_id")
    assert Seller.objects.get(pk=seller.pk).name == "Still writable"
    assert queued() == []  # what the stale trigger missed: the server log has its warning


def test_a_definition_without_watch_gets_no_triggers_and_queues_nothing(postgres, indexed_catalog, settings, reindex):
    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}  # reads products, no watch

    installed = api.triggers_install()
    execute("UPDATE catalog_product SET name = 'Renamed in SQL' WHERE id = %s", (Product.objects.first().pk,))
    named = reindex("triggers", "install", "tiny")

    assert "tiny" not in [status.alias for status in installed]
    assert queued("tiny") == [] and len(queued("products")) == 1
    assert named.exit_code == 2
    assert named.stderr.startswith("reindex: error: tiny: declares no watch, so none of its changes are queued; ")
