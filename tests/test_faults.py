"""Faults as cron meets them, with real processes: kills, signals, overlapping runs, a failing server.

After each scenario: the alias points at an index holding every row of the table, no
orphan index of the alias remains after the next run, and the lock is free.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reindex.server import indexes
from reindex.server.locking import read_holder
from tests.faultproxy import FaultProxy
from tests.helpers import alive, building_index, hold_lock_as, lock_free_or_stale, wait_for

ROWS = 300
#: Products in small batches: a load that lasts a few seconds, long enough to interrupt.
SLOW = ("products", "--batch-size", "10")
SHORT_TTL = {"REINDEX_TEST_LOCK_TTL": "2"}


def assert_whole(es: Any, alias: str = "products") -> None:
    """The alias serves every row of the table, nothing else of the alias is left, the lock is free."""
    from catalog.models import Product

    [live] = indexes.alias_targets(es, alias)
    assert es.count(index=alias)["count"] == Product.objects.count() == ROWS
    for product in Product.objects.order_by("?")[:5]:
        assert es.get(index=alias, id=str(product.pk))["_source"]["name"] == product.name
    assert sorted(dict(es.indices.get(index=f"{alias}-*"))) == [live]
    assert read_holder(es, alias) is None


@pytest.fixture
def proxy(es_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(es_url) as running:
        yield running


@pytest.fixture
def built(catalog, reindex_process, es) -> str:
    """The table seeded and the alias built once: what search serves before the night's run."""
    catalog(products=ROWS)
    first = reindex_process("rebuild", "products")
    assert first.returncode == 0, first.stderr
    [live] = indexes.alias_targets(es, "products")
    return live


@pytest.mark.parametrize("workers", ["1", "2"])
def test_kill_9_mid_load_then_the_next_run_takes_the_lock_over_at_once(built, reindex_process, es, workers):
    run = reindex_process("rebuild", *SLOW, "--workers", workers, wait=False)
    partial = wait_for(lambda: building_index(es), "the load to start", run)
    spawned = children(run.pid)
    run.kill()
    run.wait(timeout=10)
    assert indexes.alias_targets(es, "products") == [built]
    assert read_holder(es, "products").pid == run.pid  # nobody could clean up
    wait_for(lambda: not [pid for pid in spawned if alive(pid)], "the workers to die with their parent", timeout=5)

    status = reindex_process("status", "products")
    again = reindex_process("rebuild", "products")  # at once, with the default TTL of 300 s

    holder = f"{socket.gethostname()}:{run.pid}"
    assert f"  locked by {holder} since " in status.stdout
    assert "holder's process is gone: stale)" in status.stdout
    assert again.returncode == 0, again.stderr
    assert f"products: took over a stale lock held by {holder} (its process is gone)" in again.stderr
    assert f"deleted abandoned partial indexes {partial}" in again.stderr
    assert_whole(es)


def test_workers_die_with_their_parent_when_it_is_killed_with_kill_9(built, reindex_process, es, proxy):
    run = reindex_process("--es-url", proxy.url, "rebuild", *SLOW, "--workers", "2", wait=False)
    wait_for(lambda: building_index(es), "the load to start", run)
    workers = children(run.pid)
    proxy.fail("refuse", seconds=30)  # the workers now wait between retries, with ranges left
    run.kill()
    run.wait(timeout=10)
    try:
        wait_for(lambda: not [pid for pid in workers if alive(pid)], "the workers to die with their parent", timeout=3)
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert len(workers) == 2


def test_a_run_killed_on_another_host_keeps_its_lock_until_it_goes_stale(built, reindex_process, es):
    hold_lock_as(es, "products", "web2", 4242, age=0)
    ttl = {"REINDEX_TEST_LOCK_TTL": "8"}  # longer than a loaded machine takes to start the run too soon

    too_soon = reindex_process("rebuild", "products", env=ttl)
    wait_for(lambda: lock_free_or_stale(es, ttl=8), "the lock to go stale")
    again = reindex_process("rebuild", "products", env=ttl)

    assert too_soon.returncode == 3, too_soon.stderr
    assert "products: skipped: locked by web2:4242 since " in too_soon.stderr
    assert again.returncode == 0, again.stderr
    assert "took over a stale lock held by web2:4242 (no heartbeat within the lock's TTL)" in again.stderr
    assert_whole(es)


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_load_deletes_the_partial_index_and_releases_the_lock(built, reindex_process, es, signum, workers):
    run = reindex_process("rebuild", *SLOW, "--workers", workers, wait=False)
    wait_for(lambda: building_index(es), "the load to start", run)
    spawned = children(run.pid)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=30)

    assert run.returncode == 1
    assert len(spawned) >= (2 if workers == "2" else 0)  # the load ran in both workers
    assert not [pid for pid in spawned if alive(pid)], "worker processes outlived the run"
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert f"alias left on {built}" in stderr
    assert "Traceback" not in stderr
    assert indexes.alias_targets(es, "products") == [built]
    assert sorted(dict(es.indices.get(index="products-*"))) == [built]
    assert read_holder(es, "products") is None
    assert reindex_process("rebuild", "products").returncode == 0
    assert_whole(es)


def test_a_worker_killed_mid_load_fails_the_run_and_changes_nothing(built, reindex_process, es):
    run = reindex_process("rebuild", *SLOW, "--workers", "2", wait=False)
    wait_for(lambda: building_index(es), "the load to start", run)
    victim, *others = sorted(children(run.pid))
    os.kill(victim, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    _, stderr = run.communicate(timeout=60)

    assert run.returncode == 1
    assert f"worker {victim} died (killed by SIGKILL)" in stderr
    assert indexes.alias_targets(es, "products") == [built]
    assert sorted(dict(es.indices.get(index="products-*"))) == [built]
    assert read_holder(es, "products") is None
    assert not [pid for pid in others if alive(pid)]


def test_two_runs_started_together_one_builds_the_other_exits_3(built, reindex_process, es):
    runs = [reindex_process("rebuild", *SLOW, wait=False) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]

    assert sorted(run.returncode for run in runs) == [0, 3], outputs
    skipped = outputs[[run.returncode for run in runs].index(3)][1]
    assert "products: skipped: locked by " in skipped
    assert_whole(es)


@pytest.mark.parametrize("fault", ["refuse", "429"])
def test_a_server_failing_for_a_few_seconds_mid_load_is_ridden_out(built, reindex_process, es, proxy, fault):
    run = reindex_process("--es-url", proxy.url, "rebuild", *SLOW, wait=False)
    wait_for(lambda: building_index(es), "the load to start", run)
    proxy.fail(fault, seconds=2)
    stdout, stderr = run.communicate(timeout=120)

    assert run.returncode == 0, stderr
    assert proxy.faults_served > 0
    assert "retry 1 of 8" in stderr  # the run said it was retrying
    assert stdout.startswith(f"products: {ROWS} indexed, 0 failed")
    assert_whole(es)


def test_a_server_failing_past_the_retry_bound_aborts_before_the_swap(built, reindex_process, es, proxy):
    bounded = ("--max-retries", "2", "--retry-backoff", "0.1")
    run = reindex_process("--es-url", proxy.url, "rebuild", *SLOW, *bounded, "--json", wait=False, env=SHORT_TTL)
    wait_for(lambda: building_index(es), "the load to start", run)
    proxy.fail("refuse", seconds=6)
    stdout, stderr = run.communicate(timeout=60)

    assert run.returncode == 1, stderr
    [report] = json.loads(stdout)
    assert report["swapped"] is False and "ConnectionError" in report["error"]
    assert "products: could not release the lock (ConnectionError); it goes stale 2s after" in stderr
    assert "Traceback" not in stderr
    assert indexes.alias_targets(es, "products") == [built]
    assert es.count(index="products")["count"] == ROWS
    wait_for(lambda: proxy.fault() is None, "the server to come back")
    wait_for(lambda: lock_free_or_stale(es), "the lock to be free or stale")
    again = reindex_process("--es-url", proxy.url, "rebuild", "products", env=SHORT_TTL)
    assert again.returncode == 0, again.stderr
    assert_whole(es)


def test_an_emptied_table_keeps_search_whole(built, reindex_process, es):
    from catalog.models import Product

    saved = list(Product.objects.all())
    Product.objects.all().delete()
    refused = reindex_process("rebuild", "products")
    Product.objects.bulk_create(saved)

    assert refused.returncode == 1
    assert f"fewer than 0.5 of the {ROWS} in the live index" in refused.stderr
    assert indexes.alias_targets(es, "products") == [built]
    assert es.count(index="products")["count"] == ROWS
    assert reindex_process("rebuild", "products").returncode == 0
    assert_whole(es)


def test_secrets_never_appear_in_output_logs_report_or_errors(catalog, reindex_process, es, proxy, tmp_path):
    password, api_key = "Pa55-w0rd-in-url", "QXBpS2V5LWluLXNldHRpbmdz"
    (tmp_path / "secret_settings.py").write_text(
        f"from tests.settings import *  # noqa\nREINDEX = {{**REINDEX, 'API_KEY': {api_key!r}}}\n"
    )
    catalog(products=ROWS)
    url = proxy.url.replace("http://", f"http://elastic:{password}@")
    base = ("--pythonpath", str(tmp_path), "--settings", "secret_settings", "-vv", "--es-url")
    errors_file = tmp_path / "failed.jsonl"

    run = reindex_process(*base, url, "rebuild", *SLOW, "--json", "--errors-file", str(errors_file), wait=False)
    wait_for(lambda: building_index(es), "the load to start", run)
    proxy.fail("503", seconds=1)
    stdout, stderr = run.communicate(timeout=120)
    unreachable = reindex_process(*base, f"http://elastic:{password}@127.0.0.1:1", "-v", "status")

    assert run.returncode == 0, stderr
    assert "retry 1 of 8" in stderr  # logs were on and said something
    assert unreachable.returncode == 2
    assert "Traceback" in unreachable.stderr  # -v: the traceback is shown, redacted too
    for text in (stdout, stderr, errors_file.read_text(), unreachable.stdout, unreachable.stderr):
        assert password not in text
        assert api_key not in text
    assert "elastic:***@" in unreachable.stderr or "127.0.0.1:1" in unreachable.stderr
