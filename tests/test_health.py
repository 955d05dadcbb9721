"""The health endpoint, as an uptime monitor polls it: 200 while all is well, 503 with the reason when not.

Through Django's test client against a real osmem-server (and a fault proxy in front of
it for a server that goes away), on the test database.
"""

from __future__ import annotations

import datetime
import socket
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

import reindex
from reindex.models import QueueEntry
from tests.faultproxy import FaultProxy
from tests.helpers import hold_lock_as


@pytest.fixture
def poll(monkeypatch: pytest.MonkeyPatch) -> Any:
    """GET the endpoint as a monitor would, against the server at ``url``: ``poll(url, "products")``."""

    def get(url: str, *aliases: str, **params: str) -> Any:
        monkeypatch.setenv("REINDEX_ES_URL", url)
        return Client().get("/reindex/health", {"alias": list(aliases), **params})

    return get


def test_a_healthy_alias_answers_200_with_every_figure(indexed_catalog, poll):
    response = poll(indexed_catalog, "products")

    assert response.status_code == 200
    body = response.json()
    assert (body["healthy"], body["status"], body["problems"]) == (True, 200, [])
    [products] = body["aliases"]
    assert products["status"]["count"] == 50 and products["verify"]["rows"] == 50
    assert products["verify"]["agrees"] and products["verify"]["checked_rows"] == 50
    [live] = [i for i in products["status"]["indexes"] if i["live"]]
    assert live["fingerprint"] and products["status"]["matches_code"] is True
    assert [d["differences"] for d in products["diff"]] == [[]]
    assert products["queue"] == {"alias": "products", "pending": 0, "claimed": 0, "dead": 0, "lag": None, "depth": 0}
    assert products["status"]["lock"] is None and products["watermark_age"] >= 0
    assert body["thresholds"] == {
        "verify_sample": 100,
        "max_queue_lag": 300.0,
        "max_dead": 0,
        "stream_max_lag": 300.0,
        "stream_max_retained": 1024.0,
    }


def test_an_alias_never_built_is_503(catalog, es_url, poll):
    catalog(products=5)

    response = poll(es_url, "products")

    assert response.status_code == 503
    assert response.json()["problems"] == ["products: the alias does not exist (not built)"]


def test_an_empty_alias_is_503(catalog, es_url, poll):
    catalog(products=0, categories=1, sellers=1)
    reindex.rebuild("products", es_url=es_url, min_ratio=0)

    response = poll(es_url, "products")

    assert response.status_code == 503
    assert response.json()["problems"] == ["products: the alias is empty (0 documents)"]


def test_a_search_server_that_is_down_is_503_with_the_reason_never_500(indexed_catalog, poll):
    with FaultProxy(indexed_catalog) as proxy:
        assert poll(proxy.url, "products").status_code == 200
        proxy.fail("refuse", seconds=60)

        response = poll(proxy.url, "products")

    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith(f"cannot reach the search server at {proxy.url}")
    [products] = response.json()["aliases"]
    assert products["status"] is None and products["queue"]["depth"] == 0  # the database still answers


def test_nothing_listens_where_the_server_should_be(indexed_catalog, poll):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]

    response = poll(f"http://127.0.0.1:{port}", "products")

    assert response.status_code == 503
    assert "cannot reach the search server" in response.json()["problems"][0]


def test_wrong_settings_are_503_with_the_reason_never_500(indexed_catalog, poll, settings):
    settings.REINDEX = {**settings.REINDEX, "HEALTH_MAX_DEAD": -1}

    response = poll(indexed_catalog, "products")

    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("configuration: ") and "HEALTH_MAX_DEAD" in problem, problem


def test_a_queue_table_that_cannot_be_read_is_503_with_the_reason_never_500(indexed_catalog, poll, transactional_db):
    """``reindex`` in INSTALLED_APPS, ``migrate reindex`` not run: the queue's figures are a problem, the rest read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE reindex_queue RENAME TO reindex_queue_elsewhere")
    try:
        response = poll(indexed_catalog, "products")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE reindex_queue_elsewhere RENAME TO reindex_queue")

    assert response.status_code == 503
    body = response.json()
    assert any("reindex_queue" in problem for problem in body["problems"]), body["problems"]
    [products] = body["aliases"]
    assert products["queue"] is None and products["status"]["count"] == 50  # the server still answers


def test_rows_changed_behind_the_index_are_drift_found_by_the_sampled_verify(indexed_catalog, poll):
    from catalog.models import Product

    with reindex.capture.paused():
        Product.objects.filter(pk__in=list(Product.objects.values_list("pk", flat=True)[:3])).delete()

    response = poll(indexed_catalog, "products")

    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("products: verify: 47 rows, 50 documents;") and "3 orphans" in problem


def test_a_change_waiting_longer_than_the_threshold_is_503(indexed_catalog, poll, settings):
    from catalog.models import Product

    Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).update(name="renamed")
    reindex.enqueue("products", [Product.objects.order_by("pk")[0].pk])
    assert poll(indexed_catalog, "products", format="json").status_code == 503  # stale document: verify sees it
    settings.REINDEX = {**settings.REINDEX, "HEALTH_VERIFY_SAMPLE": 0}
    assert poll(indexed_catalog, "products").status_code == 200  # waiting 0 s: within the 300 s allowed
    QueueEntry.objects.update(changed_at=timezone.now() - datetime.timedelta(seconds=400))

    response = poll(indexed_catalog, "products")

    assert response.status_code == 503
    assert response.json()["problems"] == ["products: queue: the oldest change has waited 400 s (over 300 s)"]
    assert response.json()["aliases"][0]["verify"] is None


def test_dead_entries_are_503_above_the_threshold(indexed_catalog, poll, settings):
    QueueEntry.objects.create(
        alias="products", object_id="999", state="dead", attempts=5, available_at=timezone.now(),
        changed_at=timezone.now(), last_error="mapper_parsing_exception: failed to parse [price]",
    )  # fmt: skip

    assert poll(indexed_catalog, "products").json()["problems"] == ["products: queue: 1 dead entries (over 0)"]
    settings.REINDEX = {**settings.REINDEX, "HEALTH_MAX_DEAD": 1}
    assert poll(indexed_catalog, "products").status_code == 200


def test_a_stale_lock_is_503_naming_its_holder(indexed_catalog, es, poll):
    hold_lock_as(es, "products", host="web9", pid=4242, age=3600)

    response = poll(indexed_catalog, "products")

    assert response.status_code == 503
    assert response.json()["problems"] == ["products: lock: stale (heartbeat_expired), left by web9:4242"]


def test_a_live_lock_is_healthy(indexed_catalog, es, poll):
    hold_lock_as(es, "products", host="web9", pid=4242, age=1)

    response = poll(indexed_catalog, "products")

    assert response.status_code == 200
    assert response.json()["aliases"][0]["status"]["lock"]["host"] == "web9"


def test_an_unknown_alias_is_503_not_500(indexed_catalog, poll):
    response = poll(indexed_catalog, "nosuch")

    assert response.status_code == 503
    assert response.json()["problems"][0].startswith("configuration: ")


def test_the_drain_rate_of_the_last_pass_is_shown(indexed_catalog, poll):
    from catalog.models import Product

    for product in Product.objects.order_by("pk")[:7]:
        product.name += " (new)"
        product.save()
    [drained] = reindex.drain("products", es_url=indexed_catalog)
    assert drained.indexed == 7

    last = poll(indexed_catalog, "products").json()["aliases"][0]["last_drain"]

    assert last["entries"] == 7 and last["rate"] > 0 and last["seconds"] > 0
    [recorded] = reindex.last_drains("products", es_url=indexed_catalog)
    assert recorded is not None and recorded.entries == 7


def test_prometheus_text_carries_the_same_figures(indexed_catalog, poll):
    response = poll(indexed_catalog, "products", format="prometheus")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = response.content.decode().splitlines()
    assert "reindex_healthy 1" in lines
    assert 'reindex_documents{alias="products"} 50' in lines
    assert 'reindex_rows{alias="products"} 50' in lines
    assert 'reindex_queue_depth{alias="products"} 0' in lines
    assert not any(line.startswith("reindex_drain_rate") for line in lines)  # none recorded: unknown, not 0


def test_a_drain_whose_rate_cannot_be_recorded_still_drains(indexed_catalog, caplog):
    from catalog.models import Product

    from tests.httpproxy import HttpProxy

    product = Product.objects.order_by("pk").first()
    product.name = "Renamed while the lock index refuses writes"
    product.save()
    with HttpProxy(indexed_catalog) as proxy:
        proxy.answer_with(500, unless=lambda method, path: "drain" not in path)

        [drained] = reindex.drain("products", es_url=proxy.url)

    assert (drained.indexed, drained.error) == (1, None)
    assert reindex.queue_status("products")[0].pending == 0
    assert reindex.last_drains("products", es_url=indexed_catalog) == [None]
    assert "products: the drain rate was not recorded" in caplog.text


def test_the_queue_by_hour_counts_the_entries_waiting_by_the_hour_they_were_queued(db):
    now = timezone.now()
    for hours_ago, object_id, state in [(0, "1", "pending"), (0, "2", "claimed"), (3, "3", "pending"),
                                        (30, "4", "pending"), (1, "5", "dead")]:  # fmt: skip
        then = now - datetime.timedelta(hours=hours_ago)
        QueueEntry.objects.create(
            alias="products", object_id=object_id, state=state, available_at=then, changed_at=then
        )

    [(alias, counts)] = reindex.queue_by_hour("products", hours=6).items()

    assert alias == "products"
    assert counts == [1, 0, 1, 0, 0, 2]  # the change 30 hours old in the first hour; the dead one left out


def test_a_server_that_is_down_leaves_its_figures_out_of_the_prometheus_text(indexed_catalog, poll):
    response = poll("http://127.0.0.1:9", "products", format="prometheus")

    assert response.status_code == 503
    lines = response.content.decode().splitlines()
    assert "reindex_healthy 0" in lines and 'reindex_queue_depth{alias="products"} 0' in lines
    assert not any(line.startswith("reindex_documents") for line in lines)


def test_a_monitor_may_ask_with_head_but_not_post(indexed_catalog, monkeypatch):
    monkeypatch.setenv("REINDEX_ES_URL", indexed_catalog)

    assert Client().head("/reindex/health", {"alias": "products"}).status_code == 200
    assert Client().post("/reindex/health").status_code == 405
