"""The change queue: saves queue the documents they touch, ``drain`` sends them, nothing is lost or sent twice.

The demo's ``ProductIndex`` watches its sellers and categories (``watch``), so every
save below goes through the capture's signal handlers into ``reindex_queue``, in the
save's own transaction; ``drain`` turns the entries into one bulk request per batch.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import reindex as api
from reindex.capture import paused
from reindex.queue import entries as changequeue
from tests.definitions import PoisonIndex
from tests.helpers import stored


def entries(alias: str = "products") -> list[Any]:
    from reindex.models import QueueEntry

    return list(QueueEntry.objects.filter(alias=alias).order_by("object_id"))


def version(es: Any, alias: str, pk: Any) -> int:
    return int(es.get(index=alias, id=str(pk))["_version"])


def test_a_saved_product_is_searchable_after_one_drain(indexed_catalog, es):
    from catalog.models import Product

    product = Product.objects.order_by("pk").first()
    product.name = "Crème brûlée torch"
    product.save()
    assert [e.object_id for e in entries()] == [str(product.pk)]
    assert stored(es, "products", product.pk)["name"] != "Crème brûlée torch"  # nothing sent by the save

    [result] = api.drain("products", es_url=indexed_catalog)

    assert (result.claimed, result.indexed, result.deleted, result.dead) == (1, 1, 0, 0)
    assert stored(es, "products", product.pk)["name"] == "Crème brûlée torch"
    assert entries() == []


def test_renaming_a_seller_reindexes_every_product_that_carries_it(indexed_catalog, es):
    from catalog.models import Seller

    seller = Seller.objects.order_by("pk").first()
    carrying = sorted(seller.products.filter(is_active=True).values_list("pk", flat=True))
    assert carrying
    seller.name = "Renamed seller"
    seller.save()

    [result] = api.drain("products", es_url=indexed_catalog)

    assert result.indexed == len(carrying)
    for pk in carrying:
        names = [s["name"] for s in stored(es, "products", pk)["sellers"]]
        assert "Renamed seller" in names


def test_a_many_to_many_change_queues_the_product(indexed_catalog, es):
    from catalog.models import Product, Seller

    product = Product.objects.order_by("pk").first()
    newcomer = Seller.objects.create(name="Newcomer", country="FR")
    product.sellers.add(newcomer)
    api.drain("products", es_url=indexed_catalog)
    assert "Newcomer" in [s["name"] for s in stored(es, "products", product.pk)["sellers"]]

    product.sellers.clear()
    api.drain("products", es_url=indexed_catalog)
    assert stored(es, "products", product.pk)["sellers"] == []


def test_deleted_and_withdrawn_products_leave_the_index(indexed_catalog, es):
    from catalog.models import Product

    deleted, withdrawn = Product.objects.order_by("pk")[:2]
    deleted_pk = deleted.pk
    deleted.delete()
    withdrawn.is_active = False
    withdrawn.save()

    [result] = api.drain("products", es_url=indexed_catalog)

    assert (result.indexed, result.deleted) == (0, 2)
    assert stored(es, "products", deleted_pk) is None
    assert stored(es, "products", withdrawn.pk) is None


def test_a_thousand_saves_of_fifty_rows_send_at_most_fifty_documents(indexed_catalog, es):
    from catalog.models import Product

    products = list(Product.objects.all())
    before = {p.pk: version(es, "products", p.pk) for p in products}
    for n in range(1000):
        product = products[n % 50]
        product.price = n
        product.save()
    assert len(entries()) == 50

    [result] = api.drain("products", es_url=indexed_catalog)

    assert result.indexed == 50
    # Counted at the server: each document's version went up by one, a single write.
    assert {version(es, "products", p.pk) - before[p.pk] for p in products} == {1}
    assert {stored(es, "products", p.pk)["price"] for p in products} == {float(n) for n in range(950, 1000)}


def test_a_rolled_back_save_queues_nothing(indexed_catalog):
    from catalog.models import Product
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        product = Product.objects.first()
        product.name = "Never committed"
        product.save()
        raise RuntimeError("the request failed")

    assert entries() == []


def test_paused_capture_queues_nothing_and_enqueue_is_the_way_for_bulk_updates(indexed_catalog, es):
    from catalog.models import Product

    with paused():
        Product.objects.first().save()
    assert entries() == []

    Product.objects.update(in_stock=False)  # no signal
    assert api.enqueue("products", Product.objects.values_list("pk", flat=True)) == 50
    api.drain("products", es_url=indexed_catalog)
    assert {stored(es, "products", p)["in_stock"] for p in Product.objects.values_list("pk", flat=True)} == {False}


def test_a_change_while_an_entry_is_claimed_stays_queued(indexed_catalog):
    from catalog.models import Product

    product = Product.objects.first()
    product.save()
    claimed = changequeue.claim("products", 10, lease=60)
    product.name = "Changed while draining"
    product.save()  # the drainer may have read the row already

    assert changequeue.acknowledge(claimed.entries, claimed.token) == []

    [entry] = entries()
    assert (entry.state, entry.claimed_by, entry.requeued) == ("pending", None, False)


def test_a_poison_row_goes_dead_after_max_attempts_while_the_others_are_indexed(catalog, es, es_url):
    from catalog.models import Product

    catalog(products=20)
    api.rebuild(PoisonIndex(), es_url=es_url)
    poison, *others = Product.objects.order_by("pk")[:4]
    poison.name = "POISON pill"
    poison.save()
    for product in others:
        product.name = f"Fine {product.pk}"
        product.save()
    api.enqueue(PoisonIndex(), [poison, *others])

    # No back-off: the pass tries it again at once, until it is dead; the others are not held back.
    [result] = api.drain(PoisonIndex(), es_url=es_url, queue_max_attempts=3, queue_backoff=0)

    assert (result.indexed, result.retried, result.dead) == (3, 2, 1)
    assert {f.reason for f in result.failures} == {"ValueError: cannot index 'POISON pill'"}
    [entry] = entries("poison")
    assert (entry.state, entry.attempts) == ("dead", 3)
    assert "cannot index" in entry.last_error
    for product in others:
        assert stored(es, "poison", product.pk)["name"] == f"Fine {product.pk}"
    [status] = api.queue_status(PoisonIndex())
    assert (status.pending, status.claimed, status.dead) == (0, 0, 1)

    # The fix: the row is renamed (a new change revives it too); retry puts the dead entry back.
    Product.objects.filter(pk=poison.pk).update(name="Cured")
    assert api.queue_retry(PoisonIndex()) == {"poison": 1}
    [result] = api.drain(PoisonIndex(), es_url=es_url)
    assert result.indexed == 1 and entries("poison") == []
    assert stored(es, "poison", poison.pk)["name"] == "Cured"


def test_a_document_the_server_rejects_is_retried_with_back_off(catalog, es, es_url):
    from catalog.models import Product

    catalog(products=5)
    api.rebuild(PoisonIndex(), es_url=es_url)
    bad = Product.objects.first()
    Product.objects.filter(pk=bad.pk).update(name="BADPRICE")
    api.enqueue(PoisonIndex(), [bad.pk])

    [result] = api.drain(PoisonIndex(), es_url=es_url, queue_backoff=60)

    assert (result.retried, result.dead) == (1, 0)
    [entry] = entries("poison")
    assert entry.state == "pending" and entry.attempts == 1
    assert (entry.available_at - entry.changed_at).total_seconds() >= 59  # not due before a minute
    [again] = api.drain(PoisonIndex(), es_url=es_url)
    assert again.claimed == 0


def test_queue_status_retry_and_purge_from_the_command_line(indexed_catalog, reindex):
    from catalog.models import Product

    for product in Product.objects.all()[:3]:
        product.save()
    from reindex.models import QueueEntry

    QueueEntry.objects.filter(pk=entries()[0].pk).update(state="dead", last_error="boom")

    run = reindex("queue", "status", "products", "--json")
    assert run.exit_code == 0, run.stderr
    [status] = json.loads(run.stdout)
    assert (status["alias"], status["pending"], status["dead"]) == ("products", 2, 1)
    assert status["lag"] >= 0

    assert reindex("queue", "retry", "products").exit_code == 0
    assert [e.state for e in entries()] == ["pending"] * 3

    refused = reindex("queue", "purge", "products")
    assert refused.exit_code == 2 and "--all or --dead" in refused.stderr
    assert reindex("queue", "purge", "products", "--all").exit_code == 0
    assert entries() == []


def test_drain_from_the_command_line(indexed_catalog, reindex, es):
    from catalog.models import Product

    product = Product.objects.first()
    product.name = "From cron"
    product.save()

    run = reindex("drain", "products", "--json")

    assert run.exit_code == 0, run.stderr
    [report] = json.loads(run.stdout)
    assert (report["alias"], report["indexed"], report["claimed"]) == ("products", 1, 1)
    assert stored(es, "products", product.pk)["name"] == "From cron"


def test_capture_can_be_turned_off_in_settings(indexed_catalog, settings):
    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "QUEUE_CAPTURE": False}
    Product.objects.first().save()

    assert entries() == []


def test_a_drainer_whose_lease_expired_queues_its_entries_again_instead_of_removing_them(indexed_catalog):
    import time

    from catalog.models import Product

    Product.objects.first().save()
    slow = changequeue.claim("products", 10, lease=0.05)
    time.sleep(0.1)
    fast = changequeue.claim("products", 10, lease=60)  # the lease expired: another drainer takes it over
    assert [e.id for e in fast.entries] == [e.id for e in slow.entries]
    assert fast.entries[0].attempts == 1  # an expired lease counts as an attempt

    lost = changequeue.acknowledge(slow.entries, slow.token)  # the slow one may have written an older document

    assert [e.id for e in lost] == [e.id for e in slow.entries]
    [entry] = entries()
    assert (entry.claimed_by, entry.requeued) == (fast.token, True)  # still the fast one's, queued again after it
    changequeue.acknowledge(fast.entries, fast.token)
    [entry] = entries()
    assert (entry.state, entry.claimed_by) == ("pending", None)


def test_draining_an_alias_never_built_exits_2_and_keeps_its_entries(indexed_catalog, reindex):
    from catalog.models import Category

    Category.objects.first().save()  # the categories alias was never built

    run = reindex("drain", "categories")

    assert run.exit_code == 2
    assert run.stderr == (
        "reindex: error: categories: not built; run reindex rebuild categories first; "
        "the entries not sent stay queued\n"
    )
    [entry] = entries("categories")
    assert (entry.state, entry.attempts) == ("pending", 0)


def test_a_drain_with_nothing_queued_prints_nothing(indexed_catalog, reindex):
    run = reindex("drain")

    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")


@pytest.fixture
def unmigrated(catalog: Any, transactional_db: Any) -> Any:
    """A site that added "reindex" to INSTALLED_APPS but has not run ``migrate reindex`` yet: no queue table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE reindex_queue RENAME TO reindex_queue_elsewhere")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE reindex_queue_elsewhere RENAME TO reindex_queue")


@pytest.mark.parametrize(
    "command",
    [
        ["queue", "status"],
        ["queue", "retry", "products"],
        ["queue", "purge", "products", "--dead"],
        ["drain"],
        ["drain", "products", "--loop", "--max-seconds", "30"],  # exits at once: no poll forever
    ],
)
def test_queue_commands_before_migrate_say_so_in_one_line(unmigrated, reindex, command):
    run = reindex(*command)

    assert run.exit_code == 2
    assert run.stderr == (
        "reindex: error: the queue's table reindex_queue is missing: run python manage.py migrate reindex first\n"
    )
