"""The event stream under faults, with real processes: ``reindex stream`` killed with kill -9, PostgreSQL
restarted under it, the search server down, a second consumer, a poison row, and a rebuild while the
site writes.

Consumers run as ``python -m reindex stream`` in processes of their own, as a supervisor would start
them; the site's writes are raw SQL or come from ``tests/writer.py``, with capture by signals off
(``QUEUE_CAPTURE = False``): what reaches the index came through PostgreSQL's log. These tests need
the logical-decoding cluster: ``make test-stream``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

import reindex as api
from tests.faultproxy import FaultProxy
from tests.helpers import building_index, execute, finished, start_writer, stop_worker, stored, versions, wait_for

pytestmark = pytest.mark.stream

BATCHES = "tests.definitions.StreamedBatchesIndex"
POISON = "tests.definitions.StreamedPoisonIndex"
QUEUED_PACED = "tests.definitions.QueuedPacedIndex"


def rename(pk: int, name: str) -> None:
    """What a site's raw SQL does: no signal sees it, only the log."""
    execute("UPDATE catalog_product SET name = %s WHERE id = %s", (name, pk))


def consumers(alias: str) -> list[int]:
    """The PostgreSQL sessions that hold the slot's advisory lock: the ``reindex stream`` following it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext(%s)::oid AND granted",
            [f"reindex_{alias}"],
        )
        return [row[0] for row in cursor.fetchall()]


def confirmed(alias: str) -> str:
    [status] = api.slot_status(alias)
    return str(status.confirmed_lsn)


def current_lsn() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return str(cursor.fetchone()[0])


def confirmed_past(alias: str, lsn: str) -> bool:
    """Whether the consumer confirmed the slot up to ``lsn`` (everything written before it was sent)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::pg_lsn >= %s::pg_lsn", [confirmed(alias), lsn])
        return bool(cursor.fetchone()[0])


def name_of(es: Any, alias: str, pk: int) -> str | None:
    document = stored(es, alias, pk)
    return None if document is None else document["name"]


@pytest.fixture
def streamed(catalog, es_url, transactional_db, settings, reindex_process) -> Iterator[Any]:
    """``streamed(alias, definition=None, products=50)``: the catalog built, the alias rebuilt, its slot set up,
    signals off; returns ``(env, follow)`` where ``follow(*args)`` starts ``reindex stream ALIAS *args``.
    At the end the consumers still running are killed and the slots dropped."""
    slots: list[str] = []
    started: list[subprocess.Popen[str]] = []

    def prepare(alias: str, definition: str | None = None, products: int = 50, sellers: int = 8) -> Any:
        env = {"REINDEX_TEST_INDEXES": definition} if definition else {}
        settings.REINDEX = {**settings.REINDEX, "QUEUE_CAPTURE": False, "INDEXES": [definition] if definition else []}
        catalog(products=products, sellers=sellers)
        api.rebuild(alias, es_url=es_url)
        api.slot_setup(alias)
        slots.append(alias)

        def follow(*args: str, env: dict[str, str] = env) -> subprocess.Popen[str]:
            # --max-seconds: a safety net, should the test fail before it stops the consumer.
            process = reindex_process("stream", alias, "--max-seconds", "240", *args, wait=False, env=env)
            started.append(process)
            return process

        return env, follow

    yield prepare
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()
    from django.db import connections

    connections.close_all()  # after a restart of the cluster the test's own connection is gone
    for alias in slots:
        wait_for(lambda alias=alias: not consumers(alias), f"the consumers of {alias} to end")
    api.slot_drop(*slots)


def test_a_stream_killed_mid_batch_loses_nothing_and_sends_at_most_its_round_again(streamed, es, tmp_path):
    """kill -9 while the third batch of a round is built: the slot was not moved, the next consumer sends it all."""
    env, follow = streamed("batches", BATCHES, products=60)
    before = versions(es, "batches")
    execute("UPDATE catalog_product SET name = name || ' (renamed)'")  # 60 changes in one transaction
    confirmed_before = confirmed("batches")

    log = tmp_path / "batches.log"
    # Batches of 20, each read 1 s late: the kill comes while the third one waits.
    victim = follow(
        "--batch-size", "20", env={**env, "REINDEX_TEST_BATCH_DELAY": "1", "REINDEX_TEST_BATCH_LOG": str(log)}
    )
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 2, "the round's second batch", victim)
    victim.kill()  # kill -9, in the middle of its round
    victim.wait()

    assert confirmed("batches") == confirmed_before  # nothing confirmed: the round stays in the slot
    wait_for(lambda: not consumers("batches"), "PostgreSQL to end the killed consumer's session")
    again = follow("--once", "--json")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    [report] = json.loads(stdout)

    from catalog.models import Product

    assert (report["rounds"], report["documents"], report["indexed"], report["error"]) == (1, 60, 60, None)
    for pk, name in Product.objects.values_list("pk", "name"):
        assert name.endswith(" (renamed)") and name_of(es, "batches", pk) == name
    after = versions(es, "batches")
    writes = {doc_id: after[doc_id] - version for doc_id, version in before.items()}
    # The killed consumer's first batch (and perhaps its second) was sent, then sent again with its round.
    assert set(writes.values()) == {1, 2}, writes
    assert sum(1 for n in writes.values() if n == 2) in (20, 40)


def test_postgresql_restarted_under_a_running_stream(streamed, es, logical_cluster):
    """The outage is logged once, the consumer reconnects and the changes made after the restart arrive."""
    from catalog.models import Product
    from django.db import connections

    _, follow = streamed("products")
    stream = follow("--json")
    first, last = Product.objects.filter(is_active=True).order_by("pk")[0], Product.objects.order_by("-pk")[0]
    rename(first.pk, "Before the restart")
    wait_for(lambda: name_of(es, "products", first.pk) == "Before the restart", "the first change", stream)

    logical_cluster.restart(down=3)  # long enough for the consumer to meet it
    connections.close_all()
    execute("UPDATE catalog_product SET name = %s, is_active = true WHERE id = %s", ("After the restart", last.pk))

    wait_for(lambda: name_of(es, "products", last.pk) == "After the restart", "the change after", stream, timeout=60)
    [report], stderr = stop_worker(stream)  # SIGTERM: exit 0, the outage was waited out
    assert report["error"] is None and report["indexed"] >= 2
    assert stderr.count("following again once it answers") == 1, stderr  # the outage, once
    assert stderr.count("products: streaming again") == 1, stderr  # and its end


def test_the_search_server_down_holds_the_slot_until_it_returns(streamed, es, es_url):
    """~10 s of connections refused: the slot's confirmed position does not move, the change arrives after."""
    from catalog.models import Product

    _, follow = streamed("products")
    first, second = Product.objects.filter(is_active=True).order_by("pk")[:2]
    with FaultProxy(es_url) as proxy:
        stream = follow("--json", "--es-url", proxy.url)
        rename(first.pk, "Sent while the server is up")
        wait_for(lambda: name_of(es, "products", first.pk) == "Sent while the server is up", "the first", stream)
        up_to = (
            current_lsn()
        )  # idle now: its rounds confirm the log's end (a document shows before its round's confirm)
        wait_for(lambda: confirmed_past("products", up_to), "the consumer to confirm the first round", stream)

        proxy.fail("refuse", 10)
        rename(second.pk, "Saved while the server is down")
        held = confirmed("products")
        positions = set()
        while proxy.fault():
            positions.add(confirmed("products"))
            assert name_of(es, "products", second.pk) == second.name
            time.sleep(0.5)

        wait_for(lambda: name_of(es, "products", second.pk) == "Saved while the server is down", "the change", stream)
        wait_for(lambda: confirmed("products") != held, "the slot to move on", stream)
        [report], stderr = stop_worker(stream)
    assert positions == {held}  # never moved while the server was down
    assert proxy.faults_served > 0 and report["error"] is None
    assert "failed (ConnectionError); retry 1 of" in stderr  # the consumer met the outage and waited it out


def test_a_second_consumer_of_a_slot_exits_3_and_the_first_goes_on(streamed, es, reindex_process):
    from catalog.models import Product

    _, follow = streamed("products")
    first = follow("--json")
    [holder] = wait_for(lambda: consumers("products"), "the first consumer to take the slot", first)

    second = reindex_process("stream", "products", "--max-seconds", "10")  # a safety net: it must end at once

    assert second.returncode == 3, second.stderr
    assert second.stderr.count("\n") == 1 and "the slot reindex_products" in second.stderr, second.stderr
    assert f"(PostgreSQL process {holder})" in second.stderr
    product = Product.objects.filter(is_active=True).order_by("pk").first()
    rename(product.pk, "Sent by the first consumer")
    wait_for(lambda: name_of(es, "products", product.pk) == "Sent by the first consumer", "the change", first)
    [report], _ = stop_worker(first)
    assert report["error"] is None and report["indexed"] == 1


def test_a_poison_row_goes_to_the_queue_and_the_rest_flows(streamed, es):
    """A row whose build raises and a document the server rejects: queued with an attempt counted, dead after
    ``QUEUE_MAX_ATTEMPTS`` (2 here); the other changes arrive and the slot moves on."""
    from catalog.models import Product

    from reindex.models import QueueEntry

    env, follow = streamed("poison", POISON, products=20)
    env = {**env, "REINDEX_TEST_QUEUE_MAX_ATTEMPTS": "2", "REINDEX_TEST_QUEUE_BACKOFF": "0"}
    unbuildable, rejected, fine, later = Product.objects.order_by("pk")[:4]
    rename(unbuildable.pk, "POISON: its build raises")
    rename(rejected.pk, "BADPRICE: the server rejects it")
    rename(fine.pk, "Fine")

    def stream_once() -> dict[str, Any]:
        stream = follow("--once", "--json", env=env)
        stdout, stderr = stream.communicate(timeout=120)
        assert stream.returncode == 0, stderr
        [report] = json.loads(stdout)
        return dict(report)

    first = stream_once()

    assert (first["failed"], first["dead"], first["indexed"]) == (2, 0, 1)
    assert name_of(es, "poison", fine.pk) == "Fine"
    attempts = dict(QueueEntry.objects.filter(alias="poison").values_list("object_id", "attempts"))
    assert attempts == {str(unbuildable.pk): 1, str(rejected.pk): 1}
    [status] = api.slot_status("poison")
    assert status.lag_seconds == 0.0  # moved on past the poison rows

    rename(later.pk, "Fine later")
    second = stream_once()

    assert name_of(es, "poison", later.pk) == "Fine later"
    assert second["queue"]["dead"] == 2
    entries = QueueEntry.objects.filter(alias="poison").values_list("object_id", "state", "attempts")
    assert sorted(entries) == sorted([(str(unbuildable.pk), "dead", 2), (str(rejected.pk), "dead", 2)])
    assert api.queue_status("poison")[0].dead == 2


def test_a_rebuild_while_the_site_writes_and_the_stream_runs_loses_no_change(streamed, es, reindex, reindex_process):
    """The definition tracks no changes (no catch-up) and saves queue nothing: only the stream keeps the
    new index fresh, writing it while it loads and again (from the queue) once it is live."""
    env, follow = streamed("paced", QUEUED_PACED, products=300, sellers=30)
    stream = follow("--json")
    # 15 batches of 20, 0.6 s each: a load of 9 s or more, the writes in its first seconds.
    rebuild = reindex_process("rebuild", "paced", "--json", wait=False, env={**env, "REINDEX_TEST_BATCH_DELAY": "0.6"})
    wait_for(lambda: building_index(es, "paced"), "the load to start", rebuild)

    writes = finished(start_writer(seconds=2.5, **env, REINDEX_TEST_QUEUE_CAPTURE="0"))

    assert rebuild.poll() is None, "the rebuild ended before the writes did: slow its load down"
    stdout, stderr = rebuild.communicate(timeout=180)
    assert rebuild.returncode == 0, stderr
    [rebuilt] = json.loads(stdout)
    assert rebuilt["swapped"] and rebuilt["caught_up"] is None  # no catch-up: the stream did it all
    assert writes["delete"] > 0 and writes["withdraw"] > 0 and writes["rename_seller"] > 0
    end = current_lsn()
    wait_for(lambda: confirmed_past("paced", end), "the stream to catch up", stream, timeout=60)
    wait_for(lambda: api.queue_status("paced")[0].depth == 0, "the replays after the swap", stream, timeout=60)
    [streamed_report], _ = stop_worker(stream)

    assert streamed_report["replaying"] > 0  # sent to the index being built, and again once it was live
    run = reindex("verify", "paced", "--full", "--json")
    [report] = json.loads(run.stdout)
    assert (report["missing"], report["orphans"], report["stale"]) == (0, 0, 0), report
    assert run.exit_code == 0


def test_a_monitor_reading_the_slot_status_does_not_disturb_the_stream(streamed, es):
    """``slot status`` (the health endpoint, Prometheus) peeks at the slot too, and PostgreSQL lets one session
    use a slot at a time: the stream must not take such a moment for an outage."""
    from catalog.models import Product

    _, follow = streamed("products")
    stream = follow("--json")
    expected = {}
    lags: list[float | None] = []
    products = list(Product.objects.filter(is_active=True).order_by("pk")[:20])
    renames, give_up = 0, time.monotonic() + 120
    # Rename the 20 products in turn (at least once each) until the monitor has met the stream on the slot.
    while renames < len(products) or (None not in lags and time.monotonic() < give_up):
        product = products[renames % len(products)]
        expected[product.pk] = f"Renamed while watched {renames}"
        rename(product.pk, expected[product.pk])
        renames += 1
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # a monitor that never rests
            [status] = api.slot_status("products")
            lags.append(status.lag_seconds)
    wait_for(lambda: all(name_of(es, "products", pk) == name for pk, name in expected.items()), "the changes", stream)
    [report], stderr = stop_worker(stream)

    assert None in lags  # the monitor met the stream on the slot: the test proved something
    assert report["error"] is None and report["indexed"] == renames
    assert "following again" not in stderr, stderr
