"""The event stream: every committed change reaches the index from PostgreSQL's log, nothing added to a write.

These tests need a PostgreSQL cluster with ``wal_level = logical``: ``make test-stream``
starts one of its own (``scripts/logical_cluster.py``). Capture by signals is off
(``QUEUE_CAPTURE = False``): what reaches the index came through the log.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import reindex as api
from tests.helpers import execute, stored

pytestmark = pytest.mark.stream


@pytest.fixture
def streamed(catalog: Any, es_url: str, transactional_db: Any, settings: Any) -> Any:
    """The demo catalog (50 products) indexed, the products' slot set up, signals off; the slot dropped at the end."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the stream reads PostgreSQL's log: make test-stream")
    settings.REINDEX = {**settings.REINDEX, "QUEUE_CAPTURE": False}
    catalog(products=50)
    api.rebuild("products", es_url=es_url)
    api.slot_setup("products")
    yield es_url
    api.slot_drop()


def test_what_no_signal_sees_reaches_the_index_through_the_log(streamed, es):
    """Raw SQL, ``queryset.update()``, ``bulk_create()`` and a delete: one ``stream --once`` sends them all."""
    from catalog.models import Category, Product

    first, second, third = Product.objects.filter(is_active=True).order_by("pk")[:3]
    execute("UPDATE catalog_product SET name = %s WHERE id = %s", ("Renamed in SQL", first.pk))
    Product.objects.filter(pk=second.pk).update(name="Renamed by update()")
    [created] = Product.objects.bulk_create(
        [Product(name="Made in bulk", category=Category.objects.first(), price=5, is_active=True)]
    )
    third.delete()

    [result] = api.stream("products", once=True, es_url=streamed)

    assert stored(es, "products", first.pk)["name"] == "Renamed in SQL"
    assert stored(es, "products", second.pk)["name"] == "Renamed by update()"
    assert stored(es, "products", created.pk)["name"] == "Made in bulk"
    assert stored(es, "products", third.pk) is None
    assert (result.indexed, result.deleted, result.failed) == (3, 1, 0)
    [status] = api.slot_status("products")
    assert (status.lag_seconds, status.problems) == (0.0, [])


def test_a_seller_renamed_reaches_every_product_that_carries_it(streamed, es):
    from catalog.models import Seller

    seller = Seller.objects.order_by("pk").first()
    carrying = sorted(seller.products.filter(is_active=True).values_list("pk", flat=True))
    execute("UPDATE catalog_seller SET name = %s WHERE id = %s", ("Renamed seller", seller.pk))

    [result] = api.stream("products", once=True, es_url=streamed)

    assert result.indexed == len(carrying) > 0
    for pk in carrying:
        assert "Renamed seller" in json.dumps(stored(es, "products", pk))


def test_links_deleted_in_bulk_update_the_products_they_left(streamed, es):
    """A many-to-many link's DELETE carries its product (the link table has REPLICA IDENTITY FULL)."""
    from catalog.models import Product

    product = Product.objects.filter(is_active=True, sellers__isnull=False).order_by("pk").first()
    execute("DELETE FROM catalog_product_sellers WHERE product_id = %s", (product.pk,))

    api.stream("products", once=True, es_url=streamed)

    assert stored(es, "products", product.pk)["sellers"] == []


def test_a_change_is_confirmed_only_once_sent(streamed, es, es_url):
    """With the search server unreachable the slot stays where it was; the next run sends the change."""
    from catalog.models import Product

    product = Product.objects.filter(is_active=True).order_by("pk").first()
    Product.objects.filter(pk=product.pk).update(name="Waits for the server")
    [before] = api.slot_status("products")

    with pytest.raises(api.RunFailed):
        api.stream("products", once=True, es_url="http://127.0.0.1:9", max_retries=0)

    [after] = api.slot_status("products")
    assert after.confirmed_lsn == before.confirmed_lsn and after.lag_bytes > 0
    api.stream("products", once=True, es_url=es_url)
    assert stored(es, "products", product.pk)["name"] == "Waits for the server"


def test_slot_commands_from_the_command_line(streamed, reindex):
    run = reindex("slot", "status", "products", "--json")
    assert run.exit_code == 0, run.stderr
    [report] = json.loads(run.stdout)
    assert (report["alias"], report["slot"], report["exists"]) == ("products", "reindex_products", True)
    assert "catalog_product_sellers" in report["identity_full"]

    assert reindex("stream", "products", "--once").exit_code == 0
    status = reindex("status", "products")
    assert "  stream: slot reindex_products, not being read; oldest change 0.0s ago; " in status.stdout
    [report] = json.loads(reindex("status", "products", "--json").stdout)
    assert (report["alias"], report["slot"]["slot"], report["slot"]["lag_seconds"]) == (
        "products",
        "reindex_products",
        0,
    )
    assert reindex("slot", "drop", "products").exit_code == 0
    run = reindex("slot", "status", "products")
    assert run.exit_code == 1
    assert "no slot reindex_products: run `reindex slot setup products`" in run.stdout + run.stderr
    run = reindex("stream", "products", "--once")
    expected = "reindex: error: no replication slot for products: run `reindex slot setup`\n"
    assert (run.exit_code, run.stderr) == (2, expected)


def test_a_truncated_products_table_empties_the_index(streamed, es):
    from catalog.models import Product

    assert Product.objects.filter(is_active=True).exists()
    execute("TRUNCATE catalog_product CASCADE")

    [result] = api.stream("products", once=True, es_url=streamed)

    assert "catalog_product" in result.truncated
    es.indices.refresh(index="products")
    assert es.count(index="products")["count"] == 0


def test_a_truncated_link_table_sends_every_product_again(streamed, es):
    from catalog.models import Product

    active = sorted(str(pk) for pk in Product.objects.filter(is_active=True).values_list("pk", flat=True))
    execute("TRUNCATE catalog_product_sellers")

    [result] = api.stream("products", once=True, es_url=streamed)

    assert (result.truncated, result.indexed) == (["catalog_product_sellers"], len(active))
    assert all(stored(es, "products", pk)["sellers"] == [] for pk in active)


def test_a_column_added_by_a_migration_does_not_stop_the_stream(streamed, es):
    """A new column changes the table's Relation message; the stream reads columns by name."""
    from catalog.models import Product

    product = Product.objects.filter(is_active=True).order_by("pk").first()
    execute("ALTER TABLE catalog_product ADD COLUMN added_later text DEFAULT 'x'")
    try:
        execute(
            "UPDATE catalog_product SET name = %s, added_later = 'y' WHERE id = %s", ("After the migration", product.pk)
        )

        [result] = api.stream("products", once=True, es_url=streamed)
    finally:
        execute("ALTER TABLE catalog_product DROP COLUMN added_later")

    assert (result.indexed, result.exception) == (1, None)
    assert stored(es, "products", product.pk)["name"] == "After the migration"


def test_a_role_without_replication_is_told_what_to_grant(streamed):
    execute("CREATE ROLE reindex_plain")
    try:
        execute("SET ROLE reindex_plain")
        with pytest.raises(api.ConfigurationError, match="ALTER ROLE <role> WITH REPLICATION"):
            api.slot_setup("products")
    finally:
        execute("RESET ROLE")
        execute("DROP ROLE reindex_plain")


def test_celery_beat_follows_the_stream_a_minute_at_a_time(streamed, es):
    """The task ``reindex.stream`` (run here in this process, as a worker would) sends what changed."""
    from catalog.models import Product

    from reindex.tasks import follow_stream

    product = Product.objects.filter(is_active=True).order_by("pk").first()
    Product.objects.filter(pk=product.pk).update(name="Sent by the beat task")

    [report] = follow_stream.apply(args=("products",), kwargs={"max_seconds": 0.5, "es_url": streamed}).get()

    assert (report["alias"], report["indexed"], report["error"]) == ("products", 1, None)
    assert stored(es, "products", product.pk)["name"] == "Sent by the beat task"


def test_a_slot_left_behind_makes_the_health_check_fail(streamed, settings):
    """Nobody streams: the oldest change waits past STREAM_MAX_LAG and the health report says so (503)."""
    import time

    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "STREAM_MAX_LAG": 1, "HEALTH_VERIFY_SAMPLE": 0}
    Product.objects.filter(is_active=True).update(name="Waiting for a consumer")
    time.sleep(1.5)

    report = api.health("products", es_url=streamed)

    [products] = report.aliases
    assert products.slot is not None and products.slot.lag_seconds > 1
    assert report.http_status == 503
    assert any(p.startswith("products: stream: the oldest change not yet streamed") for p in report.problems)


def test_the_admin_health_page_shows_the_slot_its_lag_and_the_wal_it_keeps(streamed, settings):
    """The Index health page's "Event stream" row: the slot, whether it is read, its lag, the WAL it keeps."""
    import re

    from catalog.models import Product
    from django.contrib.auth.models import User
    from django.test import Client

    settings.REINDEX = {**settings.REINDEX, "HOSTS": [streamed], "HEALTH_VERIFY_SAMPLE": 0}
    client = Client()
    client.force_login(User.objects.create_superuser("ops", password="pw"))
    Product.objects.filter(is_active=True).update(name="Waiting for a consumer")

    waiting = stream_row(client.get("/admin/reindex/indexhealth/").content.decode())
    assert re.fullmatch(
        r"slot <code>reindex_products</code>, not being read; oldest change not yet streamed \d+\.\d s ago; "
        r"[\d.]+ (bytes|KB|MB) of WAL kept",
        waiting,
    ), waiting

    api.stream("products", once=True, es_url=streamed)

    assert "oldest change not yet streamed 0.0 s ago" in stream_row(
        client.get("/admin/reindex/indexhealth/").content.decode()
    )


def stream_row(html: str) -> str:
    """The text of the health page's "Event stream" row, on one line."""
    cell = html.split('<td class="reindex-slot">', 1)[1].split("</td>", 1)[0]
    return " ".join(cell.split())


def test_a_slot_dropped_under_a_running_stream_is_one_line_with_postgresqls_reason(streamed, reindex_process, es):
    """Someone dropped the slot (or PostgreSQL invalidated it) while ``reindex stream`` runs."""
    import signal
    import time

    from catalog.models import Product
    from django.db import OperationalError, ProgrammingError

    from tests.helpers import wait_for

    stream = reindex_process("stream", "products", wait=False)
    product = Product.objects.filter(is_active=True).order_by("pk").first()
    Product.objects.filter(pk=product.pk).update(name="Streamed before the drop")
    wait_for(lambda: stored(es, "products", product.pk)["name"] == "Streamed before the drop", "the stream", stream)
    deadline = time.monotonic() + 30
    while True:  # the slot is busy while a round reads it
        try:
            execute("SELECT pg_drop_replication_slot('reindex_products')")
            break
        except (OperationalError, ProgrammingError):
            assert time.monotonic() < deadline, "the slot was never free to drop"
            time.sleep(0.05)
    time.sleep(1)
    stream.send_signal(signal.SIGTERM)
    _, stderr = stream.communicate(timeout=30)

    assert stream.returncode == 1
    said = [line for line in stderr.splitlines() if "products: the slot reindex_products: " in line]
    assert said and "does not exist" in said[0], stderr


def identity(table: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relreplident FROM pg_class WHERE oid = %s::regclass", [table])
        return str(cursor.fetchone()[0])


def test_slot_drop_puts_back_only_what_setup_changed(streamed):
    """Setup gave the link table REPLICA IDENTITY FULL; a table that had it before keeps it after drop."""
    api.slot_drop("products")
    execute("ALTER TABLE catalog_product REPLICA IDENTITY FULL")  # the site's own choice
    try:
        [status] = api.slot_setup("products")
        assert status.identity_full == ["catalog_product_sellers"]
        assert identity("catalog_product_sellers") == identity("catalog_product") == "f"

        assert api.slot_drop("products") == ["products"]

        assert (identity("catalog_product_sellers"), identity("catalog_product")) == ("d", "f")
        assert api.slot_drop("products") == []  # nothing left to drop
    finally:
        execute("ALTER TABLE catalog_product REPLICA IDENTITY DEFAULT")
