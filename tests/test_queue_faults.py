"""The change queue under faults, with real processes: a drainer killed with kill -9, two drainers at once,
the search server down, and a rebuild while the site writes and a drainer runs.

Drainers run as ``python -m reindex drain`` in processes of their own, as a cron job or
a supervisor would start them; the site's writes come from ``tests/writer.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

import reindex as api
from reindex.config import Config
from reindex.queue.draining import drain
from reindex.server.connection import Connection
from tests.definitions import BatchesIndex
from tests.faultproxy import FaultProxy
from tests.helpers import building_index, finished, start_writer, stop_worker, stored, versions, wait_for
from tests.httpproxy import HttpProxy, RejectingProxy, SizeLimitProxy

BATCHES = {"REINDEX_TEST_INDEXES": "tests.definitions.BatchesIndex"}
QUEUED_PACED = {"REINDEX_TEST_INDEXES": "tests.definitions.QueuedPacedIndex"}


def one_product_saved(catalog: Any, reindex_process: Any, name: str) -> Any:
    """Ten products built into ``products``, the queue emptied, then the first one saved as ``name``: queued."""
    from catalog.models import Product

    from reindex.models import QueueEntry

    catalog(products=10)
    assert reindex_process("rebuild", "products").returncode == 0
    QueueEntry.objects.all().delete()
    product = Product.objects.filter(is_active=True).order_by("pk").first()
    product.name = name
    product.save()
    return product


def claimed(alias: str) -> int:
    from reindex.models import QueueEntry

    return QueueEntry.objects.filter(alias=alias, state="claimed").count()


def queued(alias: str) -> int:
    from reindex.models import QueueEntry

    return QueueEntry.objects.filter(alias=alias).count()


@dataclass
class Site:
    """A site saving in its own thread: how many transactions committed, what any of them raised."""

    saves: int = 0
    errors: list[Exception] = field(default_factory=list)


@contextmanager
def busy_site(alias: str, keys: list[Any], per_save: int, pause: float, seed: int) -> Iterator[Site]:
    """A site queueing ``per_save`` of ``keys`` in one transaction every ``pause`` seconds, until the block ends."""
    import random
    import threading

    from django.db import connections, transaction

    from reindex.queue import entries as changequeue

    site, stop = Site(), threading.Event()

    def save() -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                try:
                    with transaction.atomic():  # what several saves in one request queue
                        for pk in rng.sample(keys, per_save):
                            changequeue.enqueue_keys([(alias, pk)])
                    site.saves += 1
                except Exception as exc:
                    site.errors.append(exc)
                time.sleep(pause)
        finally:
            connections.close_all()

    writer = threading.Thread(target=save)
    writer.start()
    try:
        yield site
    finally:
        stop.set()
        writer.join(30)


@pytest.fixture
def batches_queued(catalog, es, es_url, concurrent_db) -> dict[str, int]:
    """``batches`` built from 60 products, then every product queued; the documents' versions before any drain."""
    from catalog.models import Product

    catalog(products=60)
    api.rebuild(BatchesIndex(), es_url=es_url)
    api.enqueue(BatchesIndex(), Product.objects.values_list("pk", flat=True))
    return versions(es, "batches")


def test_a_drainer_killed_mid_batch_loses_nothing_once_its_lease_expires(
    batches_queued, es, es_url, reindex_process, tmp_path
):
    env = {**BATCHES, "REINDEX_TEST_BATCH_DELAY": "30", "REINDEX_TEST_QUEUE_LEASE": "2"}
    from django.db import connection

    # The batch it builds, and on PostgreSQL the next one, claimed ahead of it on a connection of its own.
    held = 40 if connection.vendor == "postgresql" else 20
    victim = reindex_process("drain", "batches", "--batch-size", "20", wait=False, env=env)
    wait_for(lambda: claimed("batches") == held, "the drainer to claim its batches", victim)
    victim.kill()  # kill -9, in the middle of building its batch
    victim.wait()

    [first] = api.drain(BatchesIndex(), es_url=es_url)
    assert (first.claimed, first.indexed) == (60 - held, 60 - held)  # the dead drainer's batches are still leased
    assert claimed("batches") == held
    time.sleep(2.1)
    [second] = api.drain(BatchesIndex(), es_url=es_url)

    assert (second.claimed, second.indexed) == (held, held)
    assert queued("batches") == 0
    after = versions(es, "batches")
    assert {doc_id: after[doc_id] - before for doc_id, before in batches_queued.items()} == dict.fromkeys(
        batches_queued, 1
    )


def test_a_drain_stopped_by_its_time_limit_leaves_no_entry_claimed(batches_queued, es, es_url, monkeypatch):
    # On PostgreSQL the next batch is claimed while one is built: a pass that ends before using
    # it gives it back, pending and due at once, with no attempt counted.
    monkeypatch.setenv("REINDEX_TEST_BATCH_DELAY", "0.5")
    [first] = api.drain(BatchesIndex(), es_url=es_url, max_seconds=0.2, batch_size=20)

    assert (first.batches, first.indexed) == (1, 20)
    assert claimed("batches") == 0
    assert queued("batches") == 40
    [rest] = api.drain(BatchesIndex(), es_url=es_url)
    assert (rest.claimed, rest.indexed, rest.retried) == (40, 40, 0)
    after = versions(es, "batches")
    assert {doc_id: after[doc_id] - before for doc_id, before in batches_queued.items()} == dict.fromkeys(
        batches_queued, 1
    )


def test_two_drainers_at_once_never_take_the_same_entry(batches_queued, es, reindex_process, tmp_path):
    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no SKIP LOCKED: one drainer at a time")
    log = tmp_path / "batches.log"
    # 15 batches of 4, 1 s each: 15 s for one drainer; the second starts once the first is at work.
    env = {**BATCHES, "REINDEX_TEST_BATCH_DELAY": "1", "REINDEX_TEST_BATCH_LOG": str(log)}
    drainers = [reindex_process("drain", "batches", "--batch-size", "4", wait=False, env=env)]
    wait_for(lambda: claimed("batches"), "the first drainer to claim a batch", drainers[0])
    drainers.append(reindex_process("drain", "batches", "--batch-size", "4", wait=False, env=env))
    for drainer in drainers:
        _, stderr = drainer.communicate(timeout=120)
        assert drainer.returncode == 0, stderr

    assert queued("batches") == 0  # none lost
    after = versions(es, "batches")
    # None written twice: every document's version went up by exactly one.
    assert {doc_id: after[doc_id] - before for doc_id, before in batches_queued.items()} == dict.fromkeys(
        batches_queued, 1
    )
    pids = {line.split()[0] for line in log.read_text().splitlines()}
    assert len(pids) == 2, "one drainer did all the work: the test proved nothing about sharing"


def test_the_server_down_for_a_while_keeps_the_changes_queued_until_it_returns(catalog, es, es_url, reindex, db):
    from catalog.models import Product

    catalog(products=30)
    api.rebuild("products", es_url=es_url)
    with FaultProxy(es_url) as proxy:
        config = Config(hosts=(proxy.url,), max_retries=0, queue_backoff=0.05)
        client = Connection(config).client()
        proxy.fail("refuse", 600)
        for product in Product.objects.all()[:10]:
            product.name = f"Saved while the server is down {product.pk}"
            product.save()  # succeeds: nothing is sent
        [down] = drain([api.definitions("products")[0]], client, config)
        assert down.exception is not None and down.released == 10
        assert "the batch stays queued" in down.error
        assert api.queue_status("products")[0].pending == 10

        proxy.fail("refuse", 0)  # back
        time.sleep(0.1)
        [back] = drain([api.definitions("products")[0]], client, config)

    assert (back.indexed, back.exception) == (10, None)
    assert api.queue_status("products")[0].pending == 0
    for product in Product.objects.all()[:10]:
        assert stored(es, "products", product.pk)["name"] == product.name
    run = reindex("verify", "products", "--full", "--json")
    assert run.exit_code == 0, run.stdout


def test_the_server_failing_while_a_batch_is_sent_and_the_next_one_built_keeps_both_queued(catalog, es, es_url, db):
    """A batch is sent while the next is claimed and built: when its send fails, neither is acknowledged."""
    from catalog.models import Product

    catalog(products=30)
    api.rebuild("products", es_url=es_url)
    for product in Product.objects.order_by("pk"):
        product.name = f"Renamed {product.pk}"
        product.save()
    bulks = []

    def first_bulk_only(method: str, path: str) -> bool:
        """Everything reaches the server but the bulk requests after the first one (answered 503)."""
        if not path.endswith("/_bulk"):
            return True
        bulks.append(path)
        return len(bulks) == 1

    with HttpProxy(es_url) as proxy:
        proxy.answer_with(503, unless=first_bulk_only, reason="the node is restarting")
        config = Config(hosts=(proxy.url,), max_retries=0, batch_size=10, queue_backoff=0.05)
        [down] = drain([api.definitions("products")[0]], Connection(config).client(), config)

    assert "the batch stays queued" in (down.error or "")
    assert (down.batches, down.indexed) == (3, 10)  # the first batch confirmed; the second failed, the third unsent
    assert (api.queue_status("products")[0].pending, api.queue_status("products")[0].claimed) == (20, 0)

    time.sleep(0.1)  # put back due in QUEUE_BACKOFF seconds
    [back] = api.drain("products", es_url=es_url)
    assert (back.indexed, back.exception) == (20, None)
    for product in Product.objects.all():
        assert stored(es, "products", product.pk)["name"] == f"Renamed {product.pk}"


def test_sigterm_while_a_drain_worker_waits_to_send_a_rejected_item_again_ends_it_with_the_entry_queued(
    catalog, es, es_url, reindex_process
):
    """The server rejects a document with 429 and the worker waits to send it again: SIGTERM ends the
    worker there (exit 0), the entry put back as it was, not acknowledged."""
    from reindex.models import QueueEntry

    product = one_product_saved(catalog, reindex_process, "Saved while the cluster is busy")
    with RejectingProxy(es_url, ids={str(product.pk)}, times=1000) as proxy:
        drainer = reindex_process(
            "--es-url", proxy.url, "drain", "products", "--loop", "--max-seconds", "300", "--json",
            wait=False, env={"REINDEX_TEST_RETRY_BACKOFF": "600"},
        )  # fmt: skip
        try:
            wait_for(lambda: proxy.rejected, "the drainer's first try", drainer)
            time.sleep(0.5)  # in its back-off now
            [report], _ = stop_worker(drainer)
        finally:
            if drainer.poll() is None:
                drainer.kill()

    assert (report["indexed"], report["released"], report["error"]) == (0, 1, None)
    [entry] = QueueEntry.objects.filter(alias="products")
    assert (entry.state, entry.attempts) == ("pending", 0)


@pytest.fixture
def paced_drainer(catalog, reindex_process, concurrent_db, settings) -> Any:
    """``paced`` (no change tracking) built from 300 products, the queue empty, and ``drain --loop`` running."""
    import django
    from django.db import connection

    from reindex.models import QueueEntry

    if connection.vendor == "sqlite" and django.VERSION < (5, 1):
        pytest.skip("three writers on SQLite need transaction_mode IMMEDIATE (Django 5.1)")

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.QueuedPacedIndex"]}
    catalog(products=300, sellers=30)
    assert reindex_process("rebuild", "paced", env=QUEUED_PACED).returncode == 0
    QueueEntry.objects.all().delete()
    # --max-seconds: a safety net, should the test fail before it stops the drainer.
    drainer = reindex_process(
        "drain", "paced", "--loop", "--max-seconds", "300", "--json", wait=False, env=QUEUED_PACED
    )
    try:
        yield drainer
    finally:
        if drainer.poll() is None:
            drainer.kill()


def test_a_rebuild_while_the_site_writes_and_a_drainer_runs_loses_no_change(
    es, reindex, reindex_process, paced_drainer
):
    """The definition tracks no changes: no catch-up, only the queue keeps the new index fresh."""
    drained = rebuild_under_writes(es, reindex_process, paced_drainer)
    assert drained["replaying"] > 0  # written to the index being built too, and again after the swap
    run = reindex("verify", "paced", "--full", "--json")
    [report] = json.loads(run.stdout)
    assert (report["missing"], report["orphans"], report["stale"]) == (0, 0, 0), report
    assert run.exit_code == 0


def rebuild_under_writes(es: Any, reindex_process: Any, drainer: Any) -> dict[str, Any]:
    """Rebuild ``paced`` slowly while the writer writes, wait for the queue to empty, stop the drainer; its report."""
    # 15 batches of 20, 0.6 s each: a load of 9 s or more, the writes in its first seconds.
    rebuild = reindex_process(
        "rebuild", "paced", "--json", wait=False, env={**QUEUED_PACED, "REINDEX_TEST_BATCH_DELAY": "0.6"}
    )
    wait_for(lambda: building_index(es, "paced"), "the load to start", rebuild)

    writes = finished(start_writer(seconds=2.5, **QUEUED_PACED))

    assert rebuild.poll() is None, "the rebuild ended before the writes did: slow its load down"
    stdout, stderr = rebuild.communicate(timeout=180)
    assert rebuild.returncode == 0, stderr
    [rebuilt] = json.loads(stdout)
    assert rebuilt["caught_up"] is None  # no catch-up: the queue did it all
    assert rebuilt["swapped"] and rebuilt["duplicates"] == 0  # the queue's writes into the new index are its own
    assert writes["delete"] > 0 and writes["withdraw"] > 0 and writes["rename_seller"] > 0
    wait_for(lambda: api.queue_status("paced")[0].pending + api.queue_status("paced")[0].claimed == 0, "the drain")
    [drained], _ = stop_worker(drainer)
    return drained


def terminate_other_connections() -> int:
    """What a database restart does to the other sessions: their connections are cut. How many."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_a_drainer_worker_outlives_a_database_restart(catalog, es, reindex_process, transactional_db):
    from catalog.models import Product
    from django.db import connection

    from reindex.models import QueueEntry

    if connection.vendor != "postgresql":
        pytest.skip("cuts the drainer's PostgreSQL connection (pg_terminate_backend)")
    catalog(products=20)
    assert reindex_process("rebuild", "products").returncode == 0
    QueueEntry.objects.all().delete()
    drainer = reindex_process("drain", "products", "--loop", "--max-seconds", "120", "--json", wait=False)
    try:
        first = Product.objects.order_by("pk").first()
        first.name = "Before the restart"
        first.save()
        wait_for(lambda: stored(es, "products", first.pk)["name"] == first.name, "the first drain", drainer)

        assert terminate_other_connections() >= 1  # the drainer's connection among them
        last = Product.objects.order_by("pk").last()
        last.name = "After the restart"
        last.save()

        wait_for(lambda: stored(es, "products", last.pk)["name"] == last.name, "the drain after the restart", drainer)
        [report], stderr = stop_worker(drainer)  # exit 0: recovered, the outage is not this run's failure
    finally:
        if drainer.poll() is None:
            drainer.kill()
    assert report["error"] is None and report["indexed"] >= 2
    assert "products: the database: " in stderr  # the outage was logged
    assert "products: draining again" in stderr  # and its end


def test_one_drain_pass_with_the_database_down_exits_1_with_one_line(catalog, reindex_process, tmp_path):
    from django.db import connection

    catalog(products=5)
    unreachable = str(tmp_path / "gone" / "db.sqlite3") if connection.vendor == "sqlite" else "reindex_no_such_database"

    run = reindex_process("drain", "products", env={"REINDEX_TEST_DB_NAME": unreachable})

    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("reindex: error: products: the database: ")
    assert run.stderr.endswith("; the entries not sent stay queued\n") and run.stderr.count("\n") == 1


def test_putting_entries_back_never_deadlocks_with_a_site_queueing_them_again(transactional_db):
    """A site's transaction queues B then A; a drainer puts A and B back meanwhile: neither may fail."""
    import threading

    from django.db import connection, connections, transaction

    from reindex.queue import entries as changequeue

    if connection.vendor == "sqlite":
        pytest.skip("SQLite has one writer at a time: nothing to deadlock")
    changequeue.enqueue_keys([("products", 1), ("products", 2)])
    claimed = changequeue.claim("products", 10, lease=60)
    assert len(claimed.entries) == 2
    site_holds_b, drainer_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def site() -> None:
        try:
            with transaction.atomic():
                changequeue.enqueue_keys([("products", 2)])  # B locked until the commit
                site_holds_b.set()
                drainer_started.wait(10)
                time.sleep(0.5)  # the drainer now waits for B
                changequeue.enqueue_keys([("products", 1)])  # and the site wants A
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def drainer() -> None:
        try:
            drainer_started.set()
            changequeue.release(claimed.entries, claimed.token, delay=0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=site)]
    threads[0].start()
    assert site_holds_b.wait(10)
    threads.append(threading.Thread(target=drainer))
    threads[1].start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    from reindex.models import QueueEntry

    states = dict(QueueEntry.objects.values_list("object_id", "state"))
    assert states == {"1": "pending", "2": "pending"}


def test_a_server_with_a_smaller_request_limit_gets_halved_requests_and_a_lone_huge_document_fails(
    catalog, es, es_url, db
):
    """The server refuses requests over 4,000 bytes (413): the drain halves its requests until they pass;
    a document bigger than that alone fails like a rejected one, an attempt counted, and the others flow."""
    from catalog.models import Product

    catalog(products=30)
    api.rebuild("products", es_url=es_url)
    products = list(Product.objects.filter(is_active=True).order_by("pk")[:20])
    huge = products[0]
    huge.description = "x" * 5000
    for product in products:
        product.name = f"Drained through a small door {product.pk}"
        product.save()

    with SizeLimitProxy(es_url, max_bytes=4000) as proxy:
        config = Config(hosts=(proxy.url,), queue_backoff=60)
        [result] = drain([api.definitions("products")[0]], Connection(config).client(), config)

    assert proxy.refused > 0 and max(len(body) for _, path, body in proxy.requests if "_bulk" in path) > 4000
    assert (result.indexed, result.retried, result.released, result.exception) == (19, 1, 0, None)
    assert [f.id for f in result.failures] == [str(huge.pk)] and "413" in result.failures[0].reason
    for product in products[1:]:
        assert stored(es, "products", product.pk)["name"] == product.name
    assert api.queue_status("products")[0].pending == 1  # the huge one, due again after its back-off


def test_a_drainer_worker_started_while_the_server_is_down_drains_once_it_is_back(catalog, es, es_url, reindex_process):
    product = one_product_saved(catalog, reindex_process, "Saved while the search server is down")
    with FaultProxy(es_url) as proxy:
        proxy.fail("refuse", 600)
        drainer = reindex_process(
            "--es-url", proxy.url, "drain", "products", "--loop", "--max-seconds", "120", "--json", wait=False
        )
        try:
            wait_for(lambda: proxy.faults_served, "the drainer to find the server down", drainer)
            time.sleep(1)
            assert drainer.poll() is None, drainer.communicate()  # waiting, not gone
            proxy.fail("refuse", 0)  # the server is back
            wait_for(lambda: stored(es, "products", product.pk)["name"] == product.name, "the drain", drainer, 90)
            [report], stderr = stop_worker(drainer)
        finally:
            if drainer.poll() is None:
                drainer.kill()
    assert "cannot reach the search server at " in stderr  # logged once, the worker waited
    assert (report["indexed"], report["error"]) == (1, None)
    assert queued("products") == 0


def test_one_drain_pass_with_the_server_down_exits_1_and_keeps_the_entries(catalog, reindex_process):
    from catalog.models import Product

    catalog(products=5)
    Product.objects.first().save()

    run = reindex_process("--es-url", "http://127.0.0.1:9", "drain", "products")

    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("reindex: error: cannot reach the search server at http://127.0.0.1:9")
    assert run.stderr.endswith("; the queued entries stay queued\n") and run.stderr.count("\n") == 1
    assert queued("products") == 1


@pytest.mark.parametrize("edit", [False, True], ids=["a-delete", "a-delete-and-an-edit"])
def test_a_rebuild_swaps_when_the_drainer_deletes_and_adds_documents_in_its_new_index(
    es, reindex_process, paced_drainer, edit
):
    """While the load runs, the site deletes a product already loaded (and edits one the load has not reached):
    the drainer's delete (and write) reach the new index, the rebuild counts them as the queue's, and the
    entries are sent there once, however many polls the load lasts."""
    from catalog.models import Product

    drainer = paced_drainer
    # 15 batches of 20, 0.6 s each: a load of 9 s, some twenty polls of the drainer.
    rebuild = reindex_process(
        "rebuild", "paced", "--json", wait=False, env={**QUEUED_PACED, "REINDEX_TEST_BATCH_DELAY": "0.6"}
    )
    try:
        building = wait_for(lambda: building_index(es, "paced"), "the load to start", rebuild)
        active = Product.objects.filter(is_active=True).order_by("pk")
        first, last = active.first(), active.last()
        first.delete()  # loaded already: the drainer's delete takes it out of the new index
        if edit:
            last.name = "Edited before the load reached it"
            last.save()  # not loaded yet: the drainer writes it first, the rebuild replaces it
        wait_for(lambda: stored(es, building, first.pk) is None, "the drainer's delete in the new index", drainer)
        time.sleep(2)  # two more polls of the drainer while the load goes on
        assert rebuild.poll() is None, "the load ended before the drainer wrote: slow it down"
        stdout, stderr = rebuild.communicate(timeout=180)
        assert rebuild.returncode == 0, stderr
        [rebuilt] = json.loads(stdout)
        wait_for(lambda: queued("paced") == 0, "the drain after the swap", drainer)
        [drained], _ = stop_worker(drainer)
    finally:
        if rebuild.poll() is None:
            rebuild.kill()
    assert rebuilt["swapped"] and rebuilt["duplicates"] == 0
    assert rebuilt["indexed"] == rebuilt["rows_read"] == 300  # what the rebuild wrote, the deleted one among them
    assert es.count(index="paced")["count"] == active.count() == 299
    assert drained["replaying"] == 1 + edit  # each sent once into the new index while it loaded
    assert stored(es, "paced", first.pk) is None
    assert stored(es, "paced", last.pk)["name"] == last.name


def test_two_drainers_and_a_busy_site_send_each_untouched_entry_once_and_no_save_fails(
    catalog, es, es_url, reindex_process, concurrent_db, tmp_path
):
    """2,000 entries, two drainers of 100-entry batches, and a site that keeps saving every tenth row
    (three at a time, in its own transactions) meanwhile: no save fails (no deadlock), nothing stays
    claimed, and every row the site left alone is written exactly once."""

    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no SKIP LOCKED: one drainer at a time")
    from catalog.models import Product

    catalog(products=2000, sellers=3)
    api.rebuild(BatchesIndex(), es_url=es_url)
    keys = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    api.enqueue(BatchesIndex(), keys)
    before = versions(es, "batches", size=len(keys))
    touched = keys[::10]
    log = tmp_path / "batches.log"
    env = {**BATCHES, "REINDEX_TEST_BATCH_LOG": str(log)}
    drainers = [reindex_process("drain", "batches", "--batch-size", "100", wait=False, env=env) for _ in range(2)]
    with busy_site("batches", touched, per_save=3, pause=0.005, seed=7) as site:
        for drainer in drainers:
            _, stderr = drainer.communicate(timeout=300)
            assert drainer.returncode == 0, stderr
            assert stderr == ""
    [last] = api.drain(BatchesIndex(), es_url=es_url)  # what the site queued at the very end

    assert site.errors == [] and site.saves > 0
    assert queued("batches") == claimed("batches") == 0
    after = versions(es, "batches", size=len(keys))
    written = {doc_id: after[doc_id] - version for doc_id, version in before.items()}
    left_alone = set(before) - {str(pk) for pk in touched}
    assert {doc_id: written[doc_id] for doc_id in left_alone} == dict.fromkeys(left_alone, 1)
    assert all(written[str(pk)] >= 1 for pk in touched)
    assert len({line.split()[0] for line in log.read_text().splitlines()}) >= 2  # both drainers worked
    assert last.exception is None


def test_a_one_off_drain_ends_on_a_site_that_never_stops_saving(catalog, es_url, reindex_process, concurrent_db):
    """cron's ``reindex drain`` takes what was queued before it started and exits, while the site keeps
    saving the same rows again and again, faster than one drainer sends them: what the site queued
    meanwhile waits for the next run."""
    import django
    from django.db import connection

    if connection.vendor == "sqlite" and django.VERSION < (5, 1):
        pytest.skip("a busy site and a drainer on SQLite need transaction_mode IMMEDIATE (Django 5.1)")

    from catalog.models import Product

    catalog(products=300)
    api.rebuild("products", es_url=es_url)
    keys = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    api.enqueue("products", keys)
    with busy_site("products", keys, per_save=5, pause=0.002, seed=3):
        drainer = reindex_process("drain", "products", "--batch-size", "10", "--json", wait=False)
        stdout, stderr = drainer.communicate(timeout=120)

    assert drainer.returncode == 0, stderr
    [report] = json.loads(stdout)
    assert report["claimed"] == len(keys)  # each entry once: a save while claimed sends it back for the next run
    assert queued("products") > 0 and claimed("products") == 0


def test_a_busy_server_rejecting_a_drains_items_with_429_once_does_not_keep_them_waiting(catalog, es, es_url, db):
    """A drain pass whose bulk items are rejected 429 sends them again in the same pass, as a load does:
    nothing is left queued for the next pass (``QUEUE_BACKOFF`` later)."""
    from catalog.models import Product

    catalog(products=30)
    api.rebuild("products", es_url=es_url)
    products = list(Product.objects.filter(is_active=True).order_by("pk")[:10])
    for product in products:
        product.name = f"Saved while the cluster is busy {product.pk}"
        product.save()

    with RejectingProxy(es_url, ids={str(product.pk) for product in products}) as proxy:
        config = Config(hosts=(proxy.url,), queue_backoff=60, retry_backoff=0.05)
        [result] = drain([api.definitions("products")[0]], Connection(config).client(), config)

    assert len(proxy.rejected) == 10
    assert (result.indexed, result.released, result.exception) == (10, 0, None)
    assert api.queue_status("products")[0].pending == 0
    for product in products:
        assert stored(es, "products", product.pk)["name"] == product.name
