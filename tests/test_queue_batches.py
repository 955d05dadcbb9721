"""The drain is a batch job like the rebuild: the same read, the same documents, the same sender.

A batch of queued changes is read with one query for its rows and one per related
relation, built by the rebuild's batch builder into the very bytes a rebuild sends,
and acknowledged in one statement; a batch the database lets down is given back at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

import reindex as api
from benchmarks.definitions import ProductRowsIndex
from reindex.config import Config
from reindex.queue.draining import drain
from reindex.server.connection import Connection
from tests.definitions import BatchesIndex
from tests.httpproxy import HttpProxy, SizeLimitProxy


def drained(definition: Any, url: str, **options: Any) -> Any:
    config = Config(hosts=(url,), **options)
    [result] = drain([definition], Connection(config).client(), config)
    return result


class Statements(list):
    """The SQL of every statement run on the default connection inside ``with`` (``reset_queries()`` or not)."""

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.append(sql)
        return execute(sql, params, many, context)

    def __enter__(self) -> Statements:
        from django.db import connection

        self._wrapped = connection.execute_wrapper(self)
        self._wrapped.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._wrapped.__exit__(*exc)

    def counts(self) -> tuple[int, int]:
        """How many read the site's tables, and how many touched the queue's entries."""
        site = sum(1 for sql in self if "catalog_" in sql)
        queue = sum(1 for sql in self if "reindex_queue" in sql and "claimed_by" in sql)
        return site, queue


def test_a_drained_batch_reads_its_rows_and_their_sellers_with_two_queries_however_many_it_holds(catalog, es, es_url):
    """Five changed products or sixty (and every seller of each): the same statements, not one per row or seller."""
    from catalog.models import Product
    from django.db import connection

    catalog(products=60, sellers=8)
    api.rebuild(ProductRowsIndex(), es_url=es_url)
    counts = []
    for changed in (5, 60):
        api.enqueue(ProductRowsIndex(), Product.objects.order_by("pk").values_list("pk", flat=True)[:changed])
        with Statements() as statements:
            result = drained(ProductRowsIndex(), es_url, batch_size=100)
        assert (result.batches, result.indexed + result.deleted, result.error) == (1, changed, None)
        counts.append(statements.counts())

    assert [site for site, _ in counts] == [2, 2]  # the rows, the sellers of all of them
    if connection.vendor != "mysql":  # MariaDB deletes entry by entry (see entries._settle)
        assert [queue for _, queue in counts] == [3, 3]  # the claim, the acknowledgement, the claim finding none


@pytest.mark.parametrize("definition", [ProductRowsIndex, "products"], ids=["values-rows", "model-instances"])
def test_a_drain_sends_the_very_bytes_a_rebuild_sends_for_the_same_rows(catalog, es, es_url, definition):
    from catalog.models import Product

    catalog(products=40, sellers=8)
    target = definition() if not isinstance(definition, str) else api.definitions(definition)[0]

    def documents(proxy: HttpProxy) -> dict[str, bytes]:
        sent: dict[str, bytes] = {}
        for _, path, body in proxy.requests:
            if "_bulk" not in path:
                continue
            lines = body.split(b"\n")
            for header, document in zip(lines[::2], lines[1::2], strict=False):
                action = json.loads(header).get("index")
                if action and action["_index"].startswith("products"):
                    sent[action["_id"]] = document
        return sent

    with HttpProxy(es_url) as proxy:
        api.rebuild(target, es_url=proxy.url)
        rebuilt = documents(proxy)
        proxy.requests.clear()
        api.enqueue(target, Product.objects.values_list("pk", flat=True))
        result = drained(target, proxy.url)
        sent = documents(proxy)

    assert result.indexed == len(rebuilt) == Product.objects.filter(is_active=True).count() > 0
    assert sent == rebuilt
    assert any(json.loads(document)["sellers"] for document in sent.values())


#: A second connection to the SQLite file holding a write transaction for ``argv[2]`` seconds.
HOLD_THE_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


class LockingProxy(HttpProxy):
    """The test server; on the first bulk request, a site's process takes the database's write lock first."""

    def __init__(self, upstream: str, database: str, seconds: float) -> None:
        super().__init__(upstream)
        self.database, self.seconds = database, seconds
        self.holder: subprocess.Popen[str] | None = None

    def record(self, method: str, path: str, body: bytes) -> int | None:
        if "_bulk" in path and self.holder is None:
            command = [sys.executable, "-c", HOLD_THE_LOCK, self.database, str(self.seconds)]
            self.holder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert self.holder.stdout is not None and self.holder.stdout.readline().strip() == "holding"
        return super().record(method, path, body)


def test_a_drainer_that_meets_a_locked_sqlite_database_gives_its_batch_back_as_soon_as_the_lock_goes(
    catalog, es, es_url, transactional_db
):
    """A site's transaction holds SQLite's write lock while the drain sends: the acknowledgement meets
    "database is locked". The batch goes back to pending, no attempt counted, the moment the lock is
    released: not 300 s later when its lease expires."""
    from catalog.models import Product
    from django.db import connection

    from reindex.models import QueueEntry

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    catalog(products=20)
    api.rebuild(BatchesIndex(), es_url=es_url)
    api.enqueue(BatchesIndex(), Product.objects.values_list("pk", flat=True))
    options = connection.settings_dict.setdefault("OPTIONS", {})
    connection.close()
    options["timeout"] = 0.2  # the drainer's busy timeout: a loaded site's writer outlasts any
    try:
        with LockingProxy(es_url, connection.settings_dict["NAME"], seconds=3) as proxy:
            started = time.monotonic()
            result = drained(BatchesIndex(), proxy.url, queue_lease=300)
            seconds = time.monotonic() - started
            assert proxy.holder is not None and proxy.holder.wait(timeout=30) == 0
    finally:
        connection.close()
        del options["timeout"]

    assert "database is locked" in (result.error or "")
    assert seconds < 30  # the lock was held 3 s; the lease is 300 s
    states = list(QueueEntry.objects.filter(alias="batches").values_list("state", "claimed_by", "attempts"))
    assert states == [("pending", None, 0)] * 20
    assert drained(BatchesIndex(), es_url).indexed == 20  # and the next drain sends them


def test_a_rebuild_halves_its_requests_for_a_server_with_a_smaller_request_limit(catalog, es, es_url):
    """The 413 halving is the sender's, shared by the rebuild and the drain: no run fails on it."""
    catalog(products=30)

    with SizeLimitProxy(es_url, max_bytes=4000) as proxy:
        [result] = api.rebuild("products", es_url=proxy.url)

    assert proxy.refused > 0
    assert (result.indexed, result.failed) == (es.count(index="products")["count"], 0)
    assert result.indexed > 0


def test_on_postgresql_a_claim_writes_its_entries_in_place_without_touching_an_index(catalog):
    """A thousand entries claimed: PostgreSQL makes nearly every update in place (HOT), no index entry written.

    The claim changes only columns no index holds (``state`` is not in the claim's
    index), and the table's pages are filled to 40%, leaving room for the new row versions
    (migration 0005); with ``state`` in the index every claimed entry wrote three.
    """
    from django.db import connection

    from reindex.queue import entries as changequeue

    if connection.vendor != "postgresql":
        pytest.skip("HOT updates are PostgreSQL's")
    catalog(products=1)
    api.enqueue("products", range(1, 1001))

    def updates() -> tuple[int, int]:
        """Row updates of the queue's table so far in this test's transaction, and how many were made in place."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'reindex_queue'"
            )
            return cursor.fetchone()

    assert connection.in_atomic_block  # the test's transaction: its counts are this one's
    before = updates()
    claimed = changequeue.claim("products", 1000, lease=60)
    after = updates()

    assert len(claimed.entries) == 1000
    written, in_place = after[0] - before[0], after[1] - before[1]
    assert written == 1000
    assert in_place >= 950, f"{in_place} of {written} claims made in place"


def test_a_dead_entry_is_never_due_until_a_change_or_a_retry_makes_it_pending(catalog, es, es_url):
    """The claim's index does not hold ``state``: a dead entry is due in the year 9000, out of every claim's range."""
    from catalog.models import Product
    from django.utils import timezone

    from reindex.models import QueueEntry
    from reindex.queue import entries as changequeue

    catalog(products=3)
    api.rebuild("products", es_url=es_url)
    product = Product.objects.order_by("pk").first()
    api.enqueue("products", [product.pk])
    claimed = changequeue.claim("products", 10, lease=60)
    changequeue.fail([(claimed.entries[0], "boom")], claimed.token, Config(queue_max_attempts=1))
    dead = QueueEntry.objects.get(alias="products", object_id=str(product.pk))
    assert dead.state == "dead" and dead.available_at.year == 9000
    assert changequeue.claim("products", 10, lease=60).entries == []

    assert changequeue.retry_dead("products") == 1  # a retry: pending again, due now
    entry = QueueEntry.objects.get(alias="products", object_id=str(product.pk))
    assert entry.state == "pending" and entry.available_at <= timezone.now()
    claimed = changequeue.claim("products", 10, lease=60)
    changequeue.fail([(claimed.entries[0], "boom")], claimed.token, Config(queue_max_attempts=1))
    assert QueueEntry.objects.get(alias="products", object_id=str(product.pk)).available_at.year == 9000

    product.save()  # a new change: pending again, due now
    entry = QueueEntry.objects.get(alias="products", object_id=str(product.pk))
    assert entry.state == "pending" and entry.available_at <= timezone.now()
    [result] = api.drain("products", es_url=es_url)
    assert result.indexed == 1 and not QueueEntry.objects.filter(alias="products").exists()


def test_rows_queued_together_are_claimed_in_primary_key_order(catalog):
    """A bulk of keys queued at once comes back in numeric order, so that a batch's rows are a range.

    (Ordered as text, a batch of 1 to 30 was 1, 10, 11, ..., 19, 2, 20, ...: keys spread over
    the table, read by a list of keys where a range would do.)
    """
    from reindex.queue import entries as changequeue

    catalog(products=1)
    api.enqueue("products", [*range(30, 0, -1), "sku-b", "sku-a"])

    claimed = changequeue.claim("products", 12, lease=60)

    assert [entry.object_id for entry in claimed.entries] == [str(pk) for pk in range(1, 13)]
    rest = changequeue.claim("products", 40, lease=60)
    assert [entry.object_id for entry in rest.entries][-3:] == ["30", "sku-a", "sku-b"]
