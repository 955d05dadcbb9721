"""Freshness while the site writes: a writer process runs during a rebuild, and during a series of updates.

The writer (``tests/writer.py``) inserts, edits, withdraws and deletes products and
renames sellers and categories at a steady rate, as a busy site would, while
``reindex`` runs as cron runs it, in processes of its own. Afterwards
``verify --full`` must find no missing, orphan or stale document.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from typing import Any

import pytest

from reindex.server import indexes
from tests.helpers import building_index, finished, start_writer, stored, wait_for

#: The writer's transactions last milliseconds, on this very clock: 3 s of overlap is plenty (the default is 60).
OVERLAP = {"REINDEX_TEST_UPDATE_OVERLAP": "3"}
PACED = {"REINDEX_TEST_INDEXES": "tests.definitions.PacedProductIndex", **OVERLAP}


def verify_full(reindex: Any, alias: str) -> dict[str, Any]:
    run = reindex("verify", alias, "--full", "--json")
    [report] = json.loads(run.stdout)
    assert run.exit_code == (0 if report["agrees"] else 1), run.stderr
    return report


def test_a_rebuild_under_writes_loses_none(catalog, es, reindex, reindex_process, concurrent_db, settings):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PacedProductIndex"]}
    catalog(products=600, sellers=30)
    assert reindex_process("rebuild", "paced", env=PACED).returncode == 0  # last night's index
    # 30 batches of 20, 0.2 s each: a load of 6 s or more, the writes in its first seconds.
    rebuild = reindex_process(
        "rebuild", "paced", "--json", wait=False, env={**PACED, "REINDEX_TEST_BATCH_DELAY": "0.2"}
    )
    wait_for(lambda: building_index(es, "paced"), "the load to start", rebuild)

    writes = finished(start_writer(seconds=2.5))

    assert rebuild.poll() is None, "the rebuild ended before the writes did: slow its load down"
    stdout, stderr = rebuild.communicate(timeout=180)
    assert rebuild.returncode == 0, stderr
    [report] = json.loads(stdout)
    caught_up = report["caught_up"]
    assert report["swapped"] and report["watermark"]
    assert caught_up["changed"] > 0 and caught_up["indexed"] > 0
    # Deleted and withdrawn after their batch was read: the sweep before the swap removed them.
    assert caught_up["swept"] > 0
    assert writes["delete"] > 0 and writes["withdraw"] > 0 and writes["rename_seller"] > 0
    drift = verify_full(reindex, "paced")
    assert (drift["missing"], drift["orphans"], drift["stale"]) == (0, 0, 0), drift
    assert drift["agrees"]


def test_rows_deleted_outright_throughout_a_rebuild_are_gone_once_it_swaps(
    catalog, es, reindex_process, concurrent_db, settings, tmp_path
):
    """The site deletes rows outright before, during and after the load, the deltas and the swap. Every row
    whose delete committed before the swap has no document once the rebuild is done (the sweep after the
    swap); only rows deleted after the swap may have one, until that sweep or the next."""
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PacedProductIndex"]}
    catalog(products=600, sellers=30)
    assert reindex_process("rebuild", "paced", env=PACED).returncode == 0
    [old] = indexes.alias_targets(es, "paced")
    deletes = tmp_path / "deletes.log"
    writer = start_writer(seconds=600, rate=60, deletes_log=deletes)
    rebuild = reindex_process(
        "rebuild", "paced", "--json", wait=False, env={**PACED, "REINDEX_TEST_BATCH_DELAY": "0.1"}
    )
    before_swap = time.time()
    while rebuild.poll() is None:  # the last moment the alias was seen on the old index: the swap came later
        asked = time.time()
        if indexes.alias_targets(es, "paced") != [old]:
            break
        before_swap = asked
        time.sleep(0.01)
    stdout, stderr = rebuild.communicate(timeout=180)
    writer.send_signal(signal.SIGTERM)  # the deletes went on past the end of the rebuild
    finished(writer)

    assert rebuild.returncode == 0, stderr
    [report] = json.loads(stdout)
    logged = [line.split() for line in deletes.read_text().splitlines()]
    deleted = {pk: float(at) for pk, at in logged}
    es.indices.refresh(index="paced")
    found = {doc["_id"] for doc in es.mget(index="paced", ids=list(deleted))["docs"] if doc.get("found")}
    committed_before_swap = {pk for pk, at in deleted.items() if at < before_swap}
    during_the_load = [pk for pk, at in deleted.items() if at > before_swap - report["seconds"]]
    assert len(during_the_load) > 10 and len(committed_before_swap) > 10, "too few deletes: the test proved nothing"
    assert report["caught_up"]["swept"] > 0
    assert found.isdisjoint(committed_before_swap), sorted(found & committed_before_swap)


def test_an_update_during_a_rebuild_is_skipped_and_the_rebuild_covers_its_rows(
    catalog, es, reindex, reindex_process, concurrent_db, settings
):
    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PacedProductIndex"]}
    catalog(products=300)
    assert reindex_process("rebuild", "paced", env=PACED).returncode == 0
    # 15 batches of 0.5 s: longer than the update's process takes to start on a loaded machine.
    rebuild = reindex_process(
        "rebuild", "paced", "--json", wait=False, env={**PACED, "REINDEX_TEST_BATCH_DELAY": "0.5"}
    )
    wait_for(lambda: building_index(es, "paced"), "the load to start", rebuild)
    edited = list(Product.objects.order_by("pk")[:3])  # their batch was read first
    for product in edited:
        product.name = f"Edited during the rebuild {product.pk}"
        product.save()

    update = reindex_process("update", "paced", env=PACED)

    assert update.returncode == 3, update.stderr
    assert "paced: skipped: locked by " in update.stderr
    assert rebuild.poll() is None, "the rebuild ended before the update ran: slow its load down"
    _, stderr = rebuild.communicate(timeout=180)
    assert rebuild.returncode == 0, stderr
    for product in edited:
        assert stored(es, "paced", product.pk)["name"] == f"Edited during the rebuild {product.pk}"
    assert verify_full(reindex, "paced")["agrees"]


def test_updates_under_writes_keep_up_and_sweep_finds_the_deletes(catalog, es, reindex, reindex_process, concurrent_db):
    catalog(products=300, sellers=30)
    assert reindex_process("rebuild", "products").returncode == 0
    writer = start_writer(seconds=4)
    runs = []
    while writer.poll() is None:  # update as often as it can, as a cron every minute would, only faster
        done = reindex_process("update", "products", "--json", env=OVERLAP)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout)[0])
    writes = finished(writer)

    final = reindex_process("update", "products", "--json", env=OVERLAP)  # the writes after the last run

    assert final.returncode == 0, final.stderr
    assert len(runs) >= 2 and sum(r["indexed"] for r in runs) > 0 and sum(r["deleted"] for r in runs) > 0
    assert all(later["since"] < earlier["watermark"] for earlier, later in itertools.pairwise(runs))
    before_sweep = verify_full(reindex, "products")
    assert (before_sweep["missing"], before_sweep["stale"]) == (0, 0), before_sweep
    # Rows deleted outright leave no timestamp: update cannot see them, sweep does.
    assert 0 < before_sweep["orphans"] <= writes["delete"]
    swept = reindex_process("sweep", "products", "--json")
    assert json.loads(swept.stdout)[0]["deleted"] == before_sweep["orphans"]
    after = verify_full(reindex, "products")
    assert (after["missing"], after["orphans"], after["stale"]) == (0, 0, 0), after
    assert after["agrees"]


def test_an_update_does_not_keep_sqlite_writers_waiting(catalog, es, reindex_process, transactional_db):
    """Without WAL, an open read blocks every commit: the changed keys are read at once, not streamed."""
    import sqlite3

    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's locks")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=DELETE")  # SQLite's default, where readers block writers
    catalog(products=200)
    assert reindex_process("rebuild", "paced", env=PACED).returncode == 0
    # 10 batches of 20, 0.3 s each: an update that sends for 3 s.
    update = reindex_process(
        "update", "paced", "--since", "1d", wait=False, env={**PACED, "REINDEX_TEST_BATCH_DELAY": "0.3"}
    )
    time.sleep(1.5)

    site = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.5)
    site.execute(
        "UPDATE catalog_product SET name = 'Written meanwhile' WHERE id = (SELECT MIN(id) FROM catalog_product)"
    )
    site.commit()  # within half a second, while the update sends
    site.close()

    assert update.poll() is None, "the update ended before the write: slow it down"
    _, stderr = update.communicate(timeout=60)
    assert update.returncode == 0, stderr
