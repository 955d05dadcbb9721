"""``reindex.rebuild()`` inside a real Celery worker process, as docs/api.md's Celery example runs it.

The broker is the Redis on 127.0.0.1:6379 (``$CELERY_BROKER_URL``); each test sends its
task to a queue of its own, served by a worker it starts with the demo's Celery app.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reindex.server import indexes
from tests.conftest import ROOT, subprocess_env

pytest.importorskip("celery")


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


if not redis_reachable():
    if os.environ.get("REINDEX_REQUIRE_SERVICES"):
        raise RuntimeError("Redis is not reachable on 127.0.0.1:6379")
    pytest.skip("no Redis on 127.0.0.1:6379", allow_module_level=True)


@pytest.fixture
def worker(es_url: str, transactional_db: Any) -> Iterator[str]:
    """A Celery worker process (prefork, one child) serving a queue of this test's; yields the queue."""
    queue = f"reindex-test-{uuid.uuid4().hex[:12]}"
    env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings", REINDEX_ES_URL=es_url)
    command = [sys.executable, "-m", "celery", "-A", "demo.celery", "worker", "-Q", queue, "-c", "1"]
    command += ["-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    process = subprocess.Popen(command, env=env, cwd=ROOT / "example", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield queue
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def send(queue: str, *args: Any, task: str = "rebuild_search", **kwargs: Any) -> Any:
    """Send ``catalog.tasks.<task>`` to ``queue`` and wait for its outcome."""
    import demo.celery
    from catalog import tasks

    # The app the task binds to. Celery's current app is per thread: another thread (the
    # browser test's live server) may have imported demo.celery first, as its own.
    demo.celery.app.set_current()

    return getattr(tasks, task).apply_async(args, kwargs, queue=queue).get(timeout=120)


def test_a_celery_task_rebuilds_the_alias_with_the_sites_settings(catalog, worker, es):
    catalog(products=40)

    [report] = send(worker, "products", keep=1)

    assert (report["indexed"], report["swapped"]) == (40, True)
    assert indexes.alias_targets(es, "products") == [report["new_index"]]
    assert es.count(index="products")["count"] == 40


def test_workers_inside_a_prefork_celery_worker_fail_with_one_line(catalog, worker, es):
    import reindex

    catalog(products=10)

    with pytest.raises(reindex.ConfigurationError, match="cannot start processes from a daemonic process"):
        send(worker, "products", workers=2)

    assert indexes.alias_targets(es, "products") == []


def test_a_celery_task_keeps_the_alias_fresh_between_rebuilds(catalog, worker, es):
    from catalog.models import Product

    catalog(products=10)
    send(worker, "products")
    product = Product.objects.order_by("pk")[4]
    product.name = "Renamed in the shop"
    product.save()

    [report] = send(worker, "products", task="update_search")

    assert report["since_from"] == "watermark" and report["indexed"] >= 1
    assert es.get(index="products", id=str(product.pk))["_source"]["name"] == "Renamed in the shop"


def test_celery_beats_drain_task_sends_the_queued_changes(catalog, worker, es, es_url):
    import demo.celery
    from catalog.models import Product

    import reindex

    catalog(products=20)
    reindex.rebuild("products", es_url=es_url)
    product = Product.objects.order_by("pk").first()
    product.name = "Drained by Celery"
    product.save()

    [report] = demo.celery.app.send_task("reindex.drain", args=["products"], queue=worker).get(timeout=120)

    assert (report["alias"], report["indexed"], report["error"]) == ("products", 1, None)
    assert es.get(index="products", id=str(product.pk))["_source"]["name"] == "Drained by Celery"
    assert reindex.queue_status("products")[0].pending == 0


def test_queue_a_rebuild_from_the_admin_sends_the_rebuild_task_to_a_worker(catalog, worker, es, es_url, settings):
    from django.contrib.auth.models import User
    from django.test import Client

    from tests.helpers import wait_for

    catalog(products=30)
    settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url], "CELERY_QUEUE": worker}
    client = Client()
    client.force_login(User.objects.create_superuser("admin", password="pw"))
    assert "Queue a rebuild of products" in client.get("/admin/reindex/indexhealth/").content.decode()

    page = client.post("/admin/reindex/indexhealth/rebuild/", {"alias": "products"}, follow=True)

    assert "Rebuild of products queued as Celery task" in page.content.decode()
    wait_for(lambda: indexes.alias_targets(es, "products"), "the worker's rebuild to swap the alias", timeout=120)
    assert es.count(index="products")["count"] == 30


def test_the_rebuild_task_reports_a_locked_alias_instead_of_failing(catalog, worker, es, es_url):
    import demo.celery

    from tests.helpers import hold_lock_as

    catalog(products=5)
    hold_lock_as(es, "products", host="web9", pid=4242, age=1)

    [report] = demo.celery.app.send_task("reindex.rebuild", args=["products"], queue=worker).get(timeout=120)

    assert (report["alias"], report["skipped"], report["swapped"]) == ("products", "locked", False)
